package controllers

import (
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetmq/fleetmq/internal/resource"
)

// PodResolver finds the admin API address (host:port) of a broker pod. The
// default uses the pod IP; tests point it at brokers on loopback.
type PodResolver interface {
	// AdminAddress returns the pod's admin API address, or false while
	// the pod has none yet.
	AdminAddress(pod *corev1.Pod) (string, bool)
}

// PodIPResolver addresses a pod by its IP and the admin port.
type PodIPResolver struct{}

// AdminAddress returns podIP:resource.AdminPort, or false before the pod
// has an IP.
func (PodIPResolver) AdminAddress(pod *corev1.Pod) (string, bool) {
	if pod.Status.PodIP == "" {
		return "", false
	}
	return net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(resource.AdminPort)), true
}
