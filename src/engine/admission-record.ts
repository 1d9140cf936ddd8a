/**
 * The placement.dev/applied record at admission (record.ts's form, as merge.ts writes it):
 * the variables that read it (the object's own, or the stored object's where an update
 * dropped it) and its parts as text; those that write the new one (the containers created,
 * the node part, the policies with their generations, each slot's terms, the spread part);
 * and the patch that sets or removes it.
 */
import {
  GROUPS,
  groupAsks,
  lit,
  NO_STRINGS,
  OBJ,
  op,
  SLOT_ORDER,
  slotsOf,
  slotVar,
  v,
} from './admission-cel.ts';
import { nodeCreatedCel } from './admission-node.ts';
import { spreadCreatedCel, spreadRecordCel } from './admission-spread.ts';
import type { CompiledPolicy } from './policy.ts';
import { SLOTS, SPREAD_PATH, type Slot } from './record.ts';
import { APPLIED_ANNOTATION } from '../api/cluster.ts';

/** The template affinity of the stored object an update replaces. */
const OLD_OBJ = `oldObject${OBJ.slice('object'.length)}`;

/** The variables that read the record: `record`, `hasRecord`, its policies and parts as text. */
export function recordReadVariables(): { name: string; expression: string }[] {
  return [
    v('ownRecord', `object.metadata.?annotations[?${lit(APPLIED_ANNOTATION)}].orValue('')`),
    // lost-records.ts: an update that removes the record while the affinity stays as it was
    // (`kubectl annotate ... placement.dev/applied-`) leaves the terms it describes ours; the
    // stored object's record stands in for it, and is written back.
    v(
      'record',
      `variables.ownRecord == '' && request.operation == 'UPDATE' && oldObject != null && has(${OBJ}) == has(${OLD_OBJ}) && (!has(${OBJ}) || ${OBJ} == ${OLD_OBJ}) ? oldObject.metadata.?annotations[?${lit(APPLIED_ANNOTATION)}].orValue('') : variables.ownRecord`,
    ),
    v('hasRecord', `variables.record != ''`),
    // The record's `"Kind/ns/name":generation` entries (refs hold no `,`, `:` or `}`).
    v(
      'recordPolicies',
      `variables.record.contains('"policies":{') ? variables.record.split('"policies":{')[1].split('}')[0].split(',').filter(e, e != '') : ${NO_STRINGS}`,
    ),
    v(
      'createdText',
      `variables.hasRecord ? variables.record.split('"created":[')[1].split(']')[0] : ''`,
    ),
    // Up to the spread part, which follows the slots (keys in sorted order).
    v(
      'slotsText',
      `variables.hasRecord ? variables.record.split('"slots":{')[1].split(${lit(`},"${SPREAD_PATH}":[`)})[0] : ''`,
    ),
  ];
}

/**
 * A slot's own part of the record: terms of one type, so a term's text found there between
 * `[`/`,` and `,`/`]` is one of its entries (no term of a type nests one of the same type).
 */
export function slotSectionCel(slot: Slot): string {
  const laterKeys = [...SLOT_ORDER].sort().filter((k) => k > slot);
  return `variables.slotsText.contains(${lit(`"${slot}":[`)}) ? '[' + variables.slotsText.split(${lit(`"${slot}":[`)})[1]${laterKeys
    .map((k) => `.split(${lit(`],"${k}":[`)})[0]`)
    .join('')} + ']' : ''`;
}

/** The containers merge.ts's `inject` notes as created, in the order it notes them. */
function createdCel(): string {
  const parts = [`(variables.injectingAff && variables.goneAff ? ['"affinity"'] : [])`];
  for (const g of GROUPS) {
    parts.push(
      `(variables.goneG_${g} && (${groupAsks(g, 'inj')}) ? [${lit(`"affinity.${g}"`)}] : [])`,
    );
    for (const s of slotsOf(g)) {
      parts.push(
        `(size(variables.inj_${slotVar(s)}) > 0 && variables.goneF_${slotVar(s)} ? [${lit(`"affinity.${g}.${SLOTS[s][1]}"`)}] : [])`,
      );
    }
  }
  parts.push(nodeCreatedCel(), spreadCreatedCel);
  return parts.join(' + ');
}

/**
 * The variables that write the new record, for the `admitted` policies (plan order): the
 * containers created, the targeting policies with their generations, and the record text.
 */
export function recordWriteVariables(
  admitted: readonly CompiledPolicy[],
): { name: string; expression: string }[] {
  return [
    v('created', createdCel()),
    v(
      'policies',
      `(${[...admitted.keys()]
        .sort((a, b) => ((admitted[a]?.ref ?? '') < (admitted[b]?.ref ?? '') ? -1 : 1))
        .map(
          (i) =>
            `(variables.p${i} ? [${lit(`"${admitted[i]?.ref ?? ''}":${String(admitted[i]?.source.metadata.generation ?? 0)}`)}] : [])`,
        )
        .join(' + ')}).join(',')`,
    ),
    v(
      'newRecord',
      `'{"created":[' + variables.created.join(',') + '],' + variables.nodeText + '"policies":{' + variables.policies + '},"slots":{' + (${[
        ...SLOT_ORDER,
      ]
        .sort()
        .map(
          (s) =>
            `(size(variables.add_${slotVar(s)}) > 0 ? [${lit(`"${s}":[`)} + variables.text_${slotVar(s)} + ']'] : [])`,
        )
        .join(' + ')}).join(',') + '}' + ${spreadRecordCel} + '}'`,
    ),
  ];
}

const ANNOTATION_PATH = `/metadata/annotations/${APPLIED_ANNOTATION.replace('/', '~1')}`;

/** The record's patch: the new record while the policies inject anything, else none. */
export const RECORD_PATCH = `(!variables.injecting ? (variables.ownRecord != '' ? [${op('remove', ANNOTATION_PATH)}] : []) : has(object.metadata.annotations) ? [${op('add', ANNOTATION_PATH, 'variables.newRecord')}] : [${op('add', '/metadata/annotations', `{${lit(APPLIED_ANNOTATION)}: variables.newRecord}`)}])`;
