// Package v1alpha1 is the mqtt.fleetmq.io/v1alpha1 API: Broker, User and
// ACL.
//
// +kubebuilder:object:generate=true
// +groupName=mqtt.fleetmq.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of these types.
	GroupVersion = schema.GroupVersion{Group: "mqtt.fleetmq.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types with a runtime.Scheme. Only
	// apimachinery is imported, so the API package stays cheap to import.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this group-version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &Broker{}, &BrokerList{}, &User{}, &UserList{}, &ACL{}, &ACLList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
