// Package controllers reconciles Brokers, Users and ACLs. The Broker
// reconciler does the heavy lifting: it renders the broker's children,
// compiles every User and ACL of the Broker into one auth bundle, pushes
// it to the broker pods and reports per-object status. User and ACL
// reconcilers handle what is theirs alone (generated credentials, a missing
// Broker) and hand the rest to their Broker, whose work queue coalesces
// bursts of changes into a few compiles and pushes.
//
// One file per concern:
//
//   - setup.go: the manager wiring: Config, the cache filter, the field
//     indexes, each controller's watches and their mapping to requests.
//   - broker_controller.go: the Broker reconcile, step by step, its RBAC,
//     its conditions and status.
//   - broker_auth.go: the Broker's auth bundle: compile, write to the auth
//     Secret, push to every ready pod.
//   - object_status.go: the status of Users and ACLs, written by the Broker
//     reconciler after a push and by their own reconcilers while the Broker
//     is missing, through one patch (patchReadyStatus).
//   - broker_pause.go: the pause annotation and the Paused condition.
//   - broker_servicemonitor.go: the optional ServiceMonitor, applied or
//     removed.
//   - secrets.go: reading Secrets users own whatever their labels, and the
//     metadata-only Secret watch that re-checks who names a Secret.
//   - user_controller.go: a User's generated credentials Secret (never
//     taking over one it does not own) and the label on a Secret it
//     references.
//   - acl_controller.go: an ACL's missing Broker.
//   - pod_resolver.go: how the operator addresses a broker pod's admin API.
//   - apply.go: server-side apply of every child under one field manager.
//   - events.go: the Events of Brokers, Users and ACLs, one per transition.
//   - metrics.go: the operator's fleetmq_operator_* metrics.
//   - progress.go: pods that cannot start and pushes that keep failing,
//     against spec.progressDeadlineSeconds.
package controllers
