-- Argo CD health check for placement.dev PlacementPolicy and ClusterPlacementPolicy.
-- Install as resource.customizations.health.placement.dev_PlacementPolicy and
-- resource.customizations.health.placement.dev_ClusterPlacementPolicy in argocd-cm
-- (examples/argocd/argocd-cm.yaml carries this same text; a test keeps them equal).
--
-- Argo CD runs it with gopher-lua (Lua 5.1 syntax) and `obj` set to the live object.
--   Progressing  no status yet, or status older than the spec (observedGeneration <
--                metadata.generation), or Ready=False because workloads are still
--                rolling out (reason RolloutPending: still to be written;
--                RolloutInProgress: the rollouts it started still run), or Ready
--                not reported yet
--   Degraded     Degraded=True (a write held back: RolloutHeldBack; a stalled rollout,
--                ...) or Unsatisfiable=True (their message), or Ready=False
--                for any other reason
--   Healthy      Ready=True
local hs = {}

local function condition(conditions, kind)
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function message(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local status = obj.status
if status == nil or status.conditions == nil or #status.conditions == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for placement-operator to report status"
  return hs
end

local generation = 0
if obj.metadata ~= nil and obj.metadata.generation ~= nil then
  generation = obj.metadata.generation
end
local observed = status.observedGeneration
if observed == nil or observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for placement-operator to observe generation " .. tostring(generation)
  return hs
end

for _, kind in ipairs({ "Unsatisfiable", "Degraded" }) do
  local c = condition(status.conditions, kind)
  if c ~= nil and c.status == "True" then
    hs.status = "Degraded"
    hs.message = message(c, kind)
    return hs
  end
end

local ready = condition(status.conditions, "Ready")
if ready == nil or ready.status == "Unknown" then
  hs.status = "Progressing"
  hs.message = message(ready, "Waiting for the Ready condition")
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message(ready, "Ready")
  return hs
end
if ready.reason == "RolloutPending" or ready.reason == "RolloutInProgress" then
  hs.status = "Progressing"
  hs.message = message(ready, "Workloads are rolling out")
  return hs
end
hs.status = "Degraded"
hs.message = message(ready, "Not ready: " .. tostring(ready.reason))
return hs
