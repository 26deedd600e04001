-- Argo CD health check of fleetmq's Broker, User and ACL
-- (mqtt.fleetmq.io/v1alpha1). The same script serves all three kinds; see
-- docs/gitops-argocd.md and argocd-cm.yaml beside this file.
--
--   Progressing  the operator has not yet reported on the current
--                generation (status.observedGeneration or the Ready
--                condition's observedGeneration is behind
--                metadata.generation, or there is no Ready condition), or
--                Ready is False/Unknown for a transient reason (Pending,
--                PodsNotReady, NoReadyPods, PodsNotStarting, PushFailed, or
--                one this script does not know)
--   Degraded     Ready, or another condition (a Broker's Available or
--                AuthSynced), is not True for the current generation for a
--                reason that needs a person: ReconcileFailed,
--                BrokerNotFound, SecretNotFound, UsernameConflict, Invalid,
--                TLSSecretNotFound, AdminCertificateUntrusted,
--                ProgressDeadlineExceeded (pods that cannot start, or
--                pushes that keep failing, past the Broker's
--                spec.progressDeadlineSeconds: the operator keeps a
--                single failed push transient), CredentialsSecretConflict
--   Healthy      Ready is True for the current generation
--   Suspended    the object carries mqtt.fleetmq.io/paused: "true" (the
--                operator leaves it alone until the annotation goes)
local failures = {
  ReconcileFailed = true,
  BrokerNotFound = true,
  SecretNotFound = true,
  UsernameConflict = true,
  Invalid = true,
  TLSSecretNotFound = true,
  AdminCertificateUntrusted = true,
  ProgressDeadlineExceeded = true,
  CredentialsSecretConflict = true,
}

local hs = {}
if obj.metadata ~= nil and obj.metadata.annotations ~= nil and
    obj.metadata.annotations["mqtt.fleetmq.io/paused"] == "true" then
  hs.status = "Suspended"
  hs.message = "Reconciliation paused by annotation mqtt.fleetmq.io/paused"
  return hs
end

local generation = 0
if obj.metadata ~= nil and obj.metadata.generation ~= nil then
  generation = obj.metadata.generation
end

local ready = nil
local failed = nil -- another current condition that failed
local observed = 0
if obj.status ~= nil then
  if obj.status.observedGeneration ~= nil then
    observed = obj.status.observedGeneration
  end
  if obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type == "Ready" then
        ready = c
      elseif failed == nil and c.status ~= "True" and failures[c.reason] and (c.observedGeneration or 0) >= generation then
        failed = c
      end
    end
  end
end

local function describe(c)
  local reason = c.reason or ""
  local message = c.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  elseif reason ~= "" then
    return reason
  end
  return message
end

if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report the Ready condition"
  return hs
end

local readyGeneration = ready.observedGeneration or 0
if readyGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation ..
    " (Ready is for generation " .. readyGeneration .. ")"
  return hs
end

-- A failure for the current generation is Degraded even when the operator
-- could not finish the reconcile (status.observedGeneration stays behind
-- then). Ready names the failure; for a Broker whose pods cannot start
-- (say, the TLS Secret is missing) Ready says PodsNotReady and Available
-- the cause.
if ready.status == "False" and failures[ready.reason] then
  hs.status = "Degraded"
  hs.message = describe(ready)
  return hs
end
if ready.status ~= "True" and failed ~= nil then
  hs.status = "Degraded"
  hs.message = describe(failed)
  return hs
end

if observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation ..
    " (status is for generation " .. observed .. ")"
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end

hs.status = "Progressing"
hs.message = describe(ready)
return hs
