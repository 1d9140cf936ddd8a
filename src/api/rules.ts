/**
 * Every rule a bound pod can break, in report order: a violation's `rule`, a report result's
 * `rule`, and the `rule` label of the violation metrics all take their values from this list.
 */
export const RULES = [
  'podAffinity',
  'podAntiAffinity',
  'symmetricAntiAffinity',
  'nodeAffinity',
  'nodeSelector',
  'topologySpread',
] as const;

export type Rule = (typeof RULES)[number];
