package resource

import (
	"path"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
)

// Volume names in the broker pod.
const (
	VolumeConfig = "config"
	VolumeAuth   = "auth"
	VolumeAdmin  = "admin"
	VolumeTLS    = "tls"
	VolumeData   = "data"
)

// Pod security defaults, used when spec.pod.securityContext is absent.
const (
	// NonRootID is the user and group the broker runs as (distroless
	// "nonroot").
	NonRootID int64 = 65532
	// TerminationGracePeriodSeconds lets the broker close listeners, send
	// v5 clients DISCONNECT and flush sessions (it allows itself 20s).
	TerminationGracePeriodSeconds int64 = 30
	// DefaultPersistenceSize is the claim size when spec.persistence.size
	// is zero.
	DefaultPersistenceSize = "1Gi"
)

// StatefulSet runs the broker pods. configHash (ConfigHash of the
// ConfigMap) goes into the pod template, so a config change rolls the pods;
// the auth bundle is in no hash (the broker reloads it live).
//
// The selector, serviceName and volumeClaimTemplates cannot change after
// creation; they depend only on the Broker's name and spec.persistence.
func StatefulSet(b *v1alpha1.Broker, o Options, configHash string) *appsv1.StatefulSet {
	replicas := int32(1)
	if b.Spec.Replicas != nil {
		replicas = *b.Spec.Replicas
	}
	sts := &appsv1.StatefulSet{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      StatefulSetName(b),
			Namespace: b.Namespace,
			Labels:    ObjectLabels(b),
		},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            &replicas,
			Selector:            &metav1.LabelSelector{MatchLabels: Labels(b)},
			ServiceName:         HeadlessServiceName(b),
			PodManagementPolicy: appsv1.ParallelPodManagement,
			UpdateStrategy:      appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
			Template:            podTemplate(b, o, configHash),
		},
	}
	if p := b.Spec.Persistence; p != nil {
		sts.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{dataClaim(p)}
	}
	return sts
}

func podTemplate(b *v1alpha1.Broker, o Options, configHash string) corev1.PodTemplateSpec {
	pod := b.Spec.Pod.DeepCopy() // the object built must not alias the Broker
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Labels:      merge(pod.Labels, ObjectLabels(b)),
			Annotations: merge(pod.Annotations, map[string]string{AnnotationConfigHash: configHash}),
		},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{brokerContainer(b, o)},
			Volumes:                       volumes(b),
			SecurityContext:               podSecurityContext(b),
			TerminationGracePeriodSeconds: ptr.To(TerminationGracePeriodSeconds),
			// The broker never calls the Kubernetes API.
			AutomountServiceAccountToken: ptr.To(false),
			// Service environment variables are noise to the broker, and
			// many Services in a namespace slow pod start.
			EnableServiceLinks:        ptr.To(false),
			NodeSelector:              merge(nil, pod.NodeSelector),
			Tolerations:               pod.Tolerations,
			Affinity:                  pod.Affinity,
			TopologySpreadConstraints: pod.TopologySpreadConstraints,
			PriorityClassName:         pod.PriorityClassName,
		},
	}
}

func brokerContainer(b *v1alpha1.Broker, o Options) corev1.Container {
	image := b.Spec.Image
	if image == "" {
		image = o.DefaultImage
	}
	ports := make([]corev1.ContainerPort, 0, 4)
	for _, l := range listeners(b) {
		ports = append(ports, corev1.ContainerPort{Name: l.name, ContainerPort: l.port, Protocol: corev1.ProtocolTCP})
	}
	ports = append(ports, corev1.ContainerPort{Name: PortAdmin, ContainerPort: AdminPort, Protocol: corev1.ProtocolTCP})

	mounts := []corev1.VolumeMount{
		{Name: VolumeConfig, MountPath: ConfigDir, ReadOnly: true},
		{Name: VolumeAuth, MountPath: AuthDir, ReadOnly: true},
		{Name: VolumeAdmin, MountPath: AdminDir, ReadOnly: true},
		{Name: VolumeAdminTLS, MountPath: AdminTLSDir, ReadOnly: true},
		{Name: VolumeMetrics, MountPath: MetricsDir, ReadOnly: true},
	}
	if b.Spec.Listeners.TLS != nil {
		mounts = append(mounts, corev1.VolumeMount{Name: VolumeTLS, MountPath: TLSDir, ReadOnly: true})
	}
	mounts = append(mounts, corev1.VolumeMount{Name: VolumeData, MountPath: DataDir})

	return corev1.Container{
		Name:  ContainerName,
		Image: image,
		// Everything else is in the config file, so a config change is a
		// ConfigMap change (and a hash change), never an args change.
		Args:           []string{"--config", path.Join(ConfigDir, ConfigFile)},
		Env:            env(b),
		Ports:          ports,
		Resources:      *b.Spec.Resources.DeepCopy(),
		VolumeMounts:   mounts,
		StartupProbe:   httpProbe("/healthz", 2, 60), // up to 2 minutes to load persisted sessions
		LivenessProbe:  httpProbe("/healthz", 10, 3),
		ReadinessProbe: httpProbe("/readyz", 5, 3), // ready once an auth bundle is loaded
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
}

// env sets GOMEMLIMIT to 90% of the container's memory limit, when it has
// one, so the Go runtime collects garbage before the kernel OOM-kills the
// broker. (GOMAXPROCS already follows the CPU limit since Go 1.25.)
func env(b *v1alpha1.Broker) []corev1.EnvVar {
	limit, ok := b.Spec.Resources.Limits[corev1.ResourceMemory]
	if !ok || limit.Value() <= 0 {
		return nil
	}
	return []corev1.EnvVar{{Name: "GOMEMLIMIT", Value: strconv.FormatInt(limit.Value()/10*9, 10)}}
}

func httpProbe(path string, periodSeconds, failureThreshold int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{
			HTTPGet: &corev1.HTTPGetAction{
				Path: path,
				Port: intstr.FromString(PortAdmin),
				// The kubelet does not verify the certificate; the operator does.
				Scheme: corev1.URISchemeHTTPS,
			},
		},
		PeriodSeconds:    periodSeconds,
		TimeoutSeconds:   2,
		FailureThreshold: failureThreshold,
	}
}

func volumes(b *v1alpha1.Broker) []corev1.Volume {
	vs := []corev1.Volume{
		{Name: VolumeConfig, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: ConfigMapName(b)},
			Items:                []corev1.KeyToPath{{Key: ConfigFile, Path: ConfigFile}},
		}}},
		authVolume(b),
		{Name: VolumeAdmin, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: AdminSecretName(b),
			Items:      []corev1.KeyToPath{{Key: AdminTokenKey, Path: AdminTokenKey}},
		}}},
	}
	vs = append(vs, channelVolumes(b)...)
	if t := b.Spec.Listeners.TLS; t != nil {
		// The whole Secret: ca.crt is present only with client certificates,
		// and a listed key that is missing would keep the pod from starting.
		vs = append(vs, corev1.Volume{Name: VolumeTLS, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: t.SecretName,
		}}})
	}
	if b.Spec.Persistence == nil {
		vs = append(vs, corev1.Volume{Name: VolumeData, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	}
	return vs
}

// dataClaim is the volumeClaimTemplate of spec.persistence. It has no
// TypeMeta: the API server does not keep one on embedded claims, and a
// field it drops would show as a perpetual diff.
func dataClaim(p *v1alpha1.PersistenceSpec) corev1.PersistentVolumeClaim {
	size := p.Size
	if size.IsZero() {
		size = resource.MustParse(DefaultPersistenceSize)
	}
	var class *string
	if p.StorageClassName != nil {
		class = ptr.To(*p.StorageClassName)
	}
	return corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: VolumeData},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: class,
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: size},
			},
		},
	}
}

// podSecurityContext is spec.pod.securityContext when set (it replaces the
// defaults whole), else non-root as NonRootID with RuntimeDefault seccomp.
// The container's own context (no privilege escalation, read-only root
// filesystem, no capabilities) applies either way.
func podSecurityContext(b *v1alpha1.Broker) *corev1.PodSecurityContext {
	if sc := b.Spec.Pod.SecurityContext; sc != nil {
		return sc.DeepCopy()
	}
	return &corev1.PodSecurityContext{
		RunAsNonRoot:        ptr.To(true),
		RunAsUser:           ptr.To(NonRootID),
		RunAsGroup:          ptr.To(NonRootID),
		FSGroup:             ptr.To(NonRootID),
		FSGroupChangePolicy: ptr.To(corev1.FSGroupChangeOnRootMismatch),
		SeccompProfile:      &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// channelVolumes mount the admin API's certificate and the metrics token;
// only those keys: the CA key never reaches a pod.
func channelVolumes(b *v1alpha1.Broker) []corev1.Volume {
	return []corev1.Volume{
		{Name: VolumeAdminTLS, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: AdminTLSSecretName(b),
			Items:      []corev1.KeyToPath{{Key: TLSCertKey, Path: TLSCertKey}, {Key: TLSKeyKey, Path: TLSKeyKey}},
		}}},
		{Name: VolumeMetrics, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: MetricsSecretName(b),
			Items:      []corev1.KeyToPath{{Key: MetricsTokenKey, Path: MetricsTokenKey}},
		}}},
	}
}
