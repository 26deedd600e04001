package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/fleetmq/fleetmq/internal/resource"
)

// apply server-side-applies obj (a typed object with TypeMeta set) with the
// operator's single field manager, owned by owner when owner is non-nil.
// Status and server-set metadata are stripped so the operator never claims
// fields it does not mean to set.
func apply(ctx context.Context, c client.Client, scheme *runtime.Scheme, owner client.Object, obj client.Object) error {
	if owner != nil {
		if err := controllerutil.SetControllerReference(owner, obj, scheme); err != nil {
			return fmt.Errorf("set owner of %T %s: %w", obj, obj.GetName(), err)
		}
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return fmt.Errorf("convert %T %s: %w", obj, obj.GetName(), err)
		}
		u = &unstructured.Unstructured{Object: m}
	}
	delete(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(resource.FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}
