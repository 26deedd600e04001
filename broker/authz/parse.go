package authz

// This file and jsonlex.go are the decoder behind Parse: a strict
// recursive-descent JSON parser for exactly the Bundle schema. It replaced
// encoding/json, whose reflection cost ~150 ms of CPU for a 10,000-user,
// 50,000-rule bundle, most of a reload. Parse's doc comment says what it
// accepts; the differential fuzz test FuzzParse holds it to encoding/json.
//
// This file is the schema: the fields of each object and how each value
// decodes, driving the tokenizer in jsonlex.go. Decoding a new field (once
// bundle.go's type has it) touches only this file: its constant and name,
// the field table of its object, and a case in that object's decoder.
//
// There is no generic value skipping (unknown fields are errors), so the
// recursion is as deep as the schema (five levels) whatever the input.
// Actions and effects spelled like the constants are the constants.

// field identifies a known field name, for error paths.
type field uint8

const (
	fAPIVersion field = iota
	fRevision
	fAllowAnonymous
	fUsers
	fRules
	fUsername
	fPasswordHash
	fGroups
	fDisabled
	fSubjects
	fTopics
	fActions
	fEffect
	fClientIDs
	fLimits
	fMaxConnections
	fMaxSubscriptionsPerClient
	fPublishRate
	fMessagesPerSecond
	fBurst
)

var fieldNames = [...]string{
	fAPIVersion:     "apiVersion",
	fRevision:       "revision",
	fAllowAnonymous: "allowAnonymous",
	fUsers:          "users",
	fRules:          "rules",
	fUsername:       "username",
	fPasswordHash:   "passwordHash",
	fGroups:         "groups",
	fDisabled:       "disabled",
	fSubjects:       "subjects",
	fTopics:         "topics",
	fActions:        "actions",
	fEffect:         "effect",
	fClientIDs:      "clientIDs",

	fLimits:                    "limits",
	fMaxConnections:            "maxConnections",
	fMaxSubscriptionsPerClient: "maxSubscriptionsPerClient",
	fPublishRate:               "publishRate",
	fMessagesPerSecond:         "messagesPerSecond",
	fBurst:                     "burst",
}

// members (jsonlex.go) keeps the fields it has seen in a uint32: a 33rd
// field must widen it, and this stops compiling until it does.
const _ = uint32(1 << (len(fieldNames) - 1))

// maxDepth is the deepest path the schema has
// (users[i].limits.publishRate.burst is four levels; one spare).
const maxDepth = 5

// The fields of each object kind, by their exact (case-sensitive) names.
var (
	bundleFields  = map[string]field{"apiVersion": fAPIVersion, "revision": fRevision, "allowAnonymous": fAllowAnonymous, "users": fUsers, "rules": fRules}
	userFields    = map[string]field{"username": fUsername, "passwordHash": fPasswordHash, "groups": fGroups, "disabled": fDisabled, "limits": fLimits}
	ruleFields    = map[string]field{"subjects": fSubjects, "topics": fTopics, "actions": fActions, "effect": fEffect}
	subjectFields = map[string]field{"users": fUsers, "groups": fGroups, "clientIDs": fClientIDs}
)

// parseBundle decodes data, the whole input, into a Bundle.
func parseBundle(data []byte) (*Bundle, error) {
	d := &decoder{data: data}
	b := new(Bundle)
	d.ws()
	if err := d.bundle(b); err != nil {
		return nil, err
	}
	d.ws()
	if d.pos < len(d.data) {
		return nil, d.errorf("trailing data after the JSON object")
	}
	return b, nil
}

func (d *decoder) bundle(b *Bundle) error {
	if d.pos >= len(d.data) || d.data[d.pos] != '{' {
		return d.typeError("the bundle object")
	}
	d.pos++
	return d.members(bundleFields, func(f field) (err error) {
		switch f {
		case fAPIVersion:
			b.APIVersion, err = d.str()
		case fRevision:
			b.Revision, err = d.int64()
		case fAllowAnonymous:
			b.AllowAnonymous, err = d.bool()
		case fUsers:
			b.Users, err = objects(d, "an array of users", d.user)
		case fRules:
			b.Rules, err = objects(d, "an array of rules", d.rule)
		}
		return err
	})
}

func (d *decoder) user(u *User) error {
	return d.object("a user object", userFields, func(f field) (err error) {
		switch f {
		case fUsername:
			u.Username, err = d.str()
		case fPasswordHash:
			u.PasswordHash, err = d.str()
		case fGroups:
			u.Groups, err = d.strList()
		case fDisabled:
			u.Disabled, err = d.bool()
		case fLimits:
			u.Limits, err = d.userLimits()
		}
		return err
	})
}

func (d *decoder) rule(r *Rule) error {
	return d.object("a rule object", ruleFields, func(f field) (err error) {
		switch f {
		case fSubjects:
			err = d.subjects(&r.Subjects)
		case fTopics:
			r.Topics, err = d.strList()
		case fActions:
			r.Actions, err = d.actions()
		case fEffect:
			r.Effect, err = d.effect()
		}
		return err
	})
}

func (d *decoder) subjects(s *Subjects) error {
	return d.object("a subjects object", subjectFields, func(f field) (err error) {
		switch f {
		case fUsers:
			s.Users, err = d.strList()
		case fGroups:
			s.Groups, err = d.strList()
		case fClientIDs:
			s.ClientIDs, err = d.strList()
		}
		return err
	})
}

// actions decodes an array of actions (null is a nil list).
func (d *decoder) actions() ([]Action, error) {
	null, empty, err := d.arrayStart("an array of strings")
	if err != nil || null {
		return nil, err
	}
	if empty {
		return []Action{}, nil
	}
	start := len(d.actSlab.buf)
	for i := 0; ; i++ {
		d.setIndex(i)
		b, null, err := d.strOrNull()
		if err != nil {
			return nil, err
		}
		var a Action
		switch {
		case null:
		case string(b) == string(ActionPublish):
			a = ActionPublish
		case string(b) == string(ActionSubscribe):
			a = ActionSubscribe
		default:
			a = Action(d.intern(b))
		}
		d.actSlab.push(&start, a)
		if more, err := d.arrayNext(); err != nil || !more {
			if err != nil {
				return nil, err
			}
			return d.actSlab.list(start), nil
		}
	}
}

func (d *decoder) effect() (Effect, error) {
	b, null, err := d.strOrNull()
	switch {
	case err != nil || null:
		return "", err
	case string(b) == string(EffectAllow):
		return EffectAllow, nil
	case string(b) == string(EffectDeny):
		return EffectDeny, nil
	}
	return Effect(d.intern(b)), nil
}
