/**
 * The revert at admission (merge.ts's revert): which containers (the affinity, each group)
 * an earlier injection created and are empty once its terms are out, and the JSON Patch that
 * takes out the recorded terms, highest index first, then the containers left empty that
 * the injection does not fill again.
 */
import {
  AFFINITY_PATH,
  all,
  GROUPS,
  groupAsks,
  inCreated,
  lit,
  op,
  SLOT_ORDER,
  slotsOf,
  slotVar,
  v,
} from './admission-cel.ts';
import { SLOTS } from './record.ts';

/**
 * Whether each group, and the affinity, is absent once the revert is done; they need each
 * slot's `goneF_` and admission-node.ts's `reqGone`.
 */
export function containerRevertVariables(): { name: string; expression: string }[] {
  return [
    ...GROUPS.map((g) =>
      v(
        `goneG_${g}`,
        `!variables.has_${g} || (${inCreated(`affinity.${g}`)} && ${all([
          ...slotsOf(g).map((s) => `variables.goneF_${slotVar(s)}`),
          ...(g === 'nodeAffinity' ? ['variables.reqGone'] : []),
        ])})`,
      ),
    ),
    v(
      'goneAff',
      `!variables.hasAff || (${inCreated('affinity')} && ${all(GROUPS.map((g) => `variables.goneG_${g}`))})`,
    ),
  ];
}

/** The revert's JSON Patch; `nodeRemove` (admission-node.ts) removes required node affinity. */
export function revertPatches(nodeRemove: string): string[] {
  return [
    ...SLOT_ORDER.map((slot) => {
      const [group, field] = SLOTS[slot];
      const s = slotVar(slot);
      return (
        `variables.rm_${s}.reverse().map(i, JSONPatch{op: 'remove', path: ${lit(`${AFFINITY_PATH}/${group}/${field}/`)} + string(i)}) + ` +
        `(variables.hasF_${s} && variables.goneF_${s} && size(variables.inj_${s}) == 0 ? [${op('remove', `${AFFINITY_PATH}/${group}/${field}`)}] : [])`
      );
    }),
    nodeRemove,
    ...GROUPS.map(
      (g) =>
        `(variables.has_${g} && variables.goneG_${g} && !(${groupAsks(g, 'inj')}) ? [${op('remove', `${AFFINITY_PATH}/${g}`)}] : [])`,
    ),
    `(variables.hasAff && variables.goneAff && !variables.injectingAff ? [${op('remove', AFFINITY_PATH)}] : [])`,
  ];
}
