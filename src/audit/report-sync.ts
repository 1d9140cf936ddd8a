/**
 * Keeps the OpenReports objects in step with the audit's findings: after each pass, the
 * reports the findings call for (reports.ts) are compared with what is stored, and only a
 * report whose content differs is applied; a report nothing calls for any more is deleted.
 * A steady cluster costs no write. What is stored is read once (a List of the operator's
 * own reports) and then known from the writes; `resync` reads it again, so that a report
 * edited or deleted by hand is put right on the next pass. Which kinds the API server serves
 * (its CRDs) is asked at start and again on each resync, so CRDs installed later are found.
 */
import type { Logger } from '../util/logger.ts';
import { errorMessage } from '../util/errors.ts';
import { jsonEqual } from '../util/json.ts';
import { apiVersionOf, type ReportApi, type ReportKind } from '../api/reports.ts';
import {
  desiredReports,
  reportContent,
  reportKey,
  type ReportFinding,
  type ReportObject,
  type ReportPolicy,
} from './reports.ts';

/** The API calls the sync needs (src/kube/reports.ts implements them). */
export interface ReportStore {
  /** The report kinds the API server serves (discovery); none when the CRDs are missing. */
  served(signal: AbortSignal): Promise<ReadonlySet<ReportKind>>;
  /** The reports of this kind the operator wrote (by its managed-by label), as stored. */
  list(kind: ReportKind, signal: AbortSignal): Promise<readonly unknown[]>;
  /** Server-side apply with the operator's field manager. */
  apply(report: ReportObject, signal: AbortSignal): Promise<void>;
  /** Deletes a report; one already gone is fine. */
  remove(
    kind: ReportKind,
    namespace: string | undefined,
    name: string,
    signal: AbortSignal,
  ): Promise<void>;
}

/** What a pass gives the sync. */
export interface ReportInput {
  readonly findings: readonly ReportFinding[];
  readonly policies: readonly ReportPolicy[];
  readonly podUid: (pod: string) => string | undefined;
}

const REQUEST_MS = 30_000;

/** A report as stored: where it is, and its content as reportContent gives it. */
interface StoredReport {
  readonly kind: ReportKind;
  readonly namespace?: string;
  readonly name: string;
  readonly content: unknown;
}

export class ReportSync {
  readonly #store: ReportStore;
  readonly #api: ReportApi;
  readonly #name: string;
  readonly #log: Logger;
  /** The kinds served, as last discovered; null until asked (again). */
  #kinds: ReadonlySet<ReportKind> | null = null;
  /** What was last logged of them: a line only when it changes. */
  #told: string | undefined;
  /** What is stored, by reportKey, as reportContent; null until read. */
  #stored: Map<string, StoredReport> | null = null;
  /** Writes made, for tests and logs. */
  readonly stats = { applied: 0, deleted: 0, failed: 0 };

  constructor(store: ReportStore, api: ReportApi, log: Logger) {
    this.#store = store;
    this.#api = api;
    this.#name = apiVersionOf(api);
    this.#log = log;
  }

  /**
   * Asks which report kinds the API server serves, and logs `reports on` or `reports off`
   * when that differs from what it was. An unanswered question means off until next time.
   */
  async discover(): Promise<ReadonlySet<ReportKind>> {
    let kinds: ReadonlySet<ReportKind>;
    let error: string | undefined;
    try {
      kinds = await this.#store.served(AbortSignal.timeout(REQUEST_MS));
    } catch (e) {
      kinds = new Set();
      error = errorMessage(e);
    }
    this.#kinds = kinds;
    const told = `${[...kinds].join()}|${error ?? ''}`;
    if (told === this.#told) return kinds;
    this.#told = told;
    const api = this.#name;
    if (kinds.size > 0)
      this.#log.info('reports on', { api, kinds: [...kinds].map((k) => this.#api.kinds[k].kind) });
    else if (error !== undefined)
      this.#log.warn('reports off', {
        api,
        detail: `discovery of ${api} failed; none of its reports are published`,
        error,
      });
    else
      this.#log.info('reports off', {
        api,
        detail: `the API server does not serve ${api} (its CRDs are not installed); none of its reports are published`,
      });
    return kinds;
  }

  /** Before the next pass: asks again which kinds are served, and reads what is stored. */
  resync(): void {
    this.#kinds = null;
    this.#stored = null;
  }

  /** Brings the stored reports in line with a pass's findings, writing only the difference. */
  async publish(input: ReportInput): Promise<void> {
    const kinds = this.#kinds ?? (await this.discover());
    if (kinds.size === 0) return;
    const signal = AbortSignal.timeout(REQUEST_MS * 4);
    let stored = this.#stored;
    if (stored === null) {
      try {
        stored = await this.#read(kinds, signal);
      } catch (error) {
        // The audit goes on without reports; the next pass reads again.
        this.#log.warn('reading the stored reports failed', {
          api: this.#name,
          error: errorMessage(error),
        });
        return;
      }
      this.#stored = stored;
    }
    const desired = desiredReports({ ...input, kinds, api: this.#api });
    for (const [key, report] of desired) {
      const content = reportContent(report);
      if (jsonEqual(stored.get(key)?.content, content)) continue;
      const where = { api: this.#name, report: key, fail: report.summary.fail };
      try {
        await this.#store.apply(report, signal);
        this.stats.applied++;
        stored.set(key, {
          kind: report.metadata.namespace === undefined ? 'ClusterReport' : 'Report',
          name: report.metadata.name,
          ...(report.metadata.namespace === undefined
            ? {}
            : { namespace: report.metadata.namespace }),
          content,
        });
        this.#log.info('report written', where);
      } catch (error) {
        // Not known as stored: the next pass tries again.
        stored.delete(key);
        this.stats.failed++;
        this.#log.warn('report write failed', { ...where, error: errorMessage(error) });
      }
    }
    for (const [key, s] of [...stored]) {
      if (desired.has(key)) continue;
      try {
        await this.#store.remove(s.kind, s.namespace, s.name, signal);
        this.stats.deleted++;
        stored.delete(key);
        this.#log.info('report deleted', { api: this.#name, report: key });
      } catch (error) {
        // Still known as stored: the next pass tries again.
        this.stats.failed++;
        this.#log.warn('report delete failed', {
          api: this.#name,
          report: key,
          error: errorMessage(error),
        });
      }
    }
  }

  async #read(
    kinds: ReadonlySet<ReportKind>,
    signal: AbortSignal,
  ): Promise<Map<string, StoredReport>> {
    const out: Map<string, StoredReport> = new Map();
    for (const kind of kinds) {
      for (const o of await this.#store.list(kind, signal)) {
        const meta = metadataOf(o);
        if (meta === undefined) continue;
        const key = reportKey(meta);
        out.set(key, {
          kind,
          name: meta.name,
          ...(meta.namespace === undefined ? {} : { namespace: meta.namespace }),
          content: reportContent(o),
        });
      }
    }
    return out;
  }
}

function metadataOf(o: unknown): { name: string; namespace?: string } | undefined {
  if (typeof o !== 'object' || o === null) return undefined;
  const m = (o as { metadata?: { name?: unknown; namespace?: unknown } }).metadata;
  if (typeof m?.name !== 'string') return undefined;
  return typeof m.namespace === 'string'
    ? { name: m.name, namespace: m.namespace }
    : { name: m.name };
}
