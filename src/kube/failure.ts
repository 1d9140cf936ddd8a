/**
 * What went wrong with an API call, read once from whatever shape the error came in (an
 * ApiException with a Status body, a watch error, a network error), and what follows from
 * it: worth retrying, or rejected as invalid.
 */
import { ApiException } from '@kubernetes/client-node';

import { isRecord, record, text } from './json.ts';

/** What went wrong with an API call, whatever shape the error came in. */
export interface ApiFailure {
  /** HTTP status; undefined when no response arrived (network, timeout). */
  readonly status: number | undefined;
  /** The Status reason (`Conflict`, `NotFound`, `Expired`, ...), when the server sent one. */
  readonly reason: string | undefined;
  readonly message: string;
  /** The cause types of the Status, `details.causes[].reason` (e.g. `DisruptionBudget`). */
  readonly causes: readonly string[];
  /** The fields the Status's causes name (`details.causes[].field`): what validation rejected. */
  readonly fields: readonly string[];
}

/** Reads an ApiException (its body is the Status JSON text), a watch error or a network error. */
export function apiFailure(error: unknown): ApiFailure {
  if (error instanceof ApiException) {
    const status = statusBody(error.body);
    return {
      status: error.code,
      reason: status.reason,
      message: status.message ?? `HTTP ${error.code}`,
      causes: status.causes,
      fields: status.fields,
    };
  }
  if (error instanceof Error) {
    const code = (error as { statusCode?: unknown }).statusCode;
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return {
      status: typeof code === 'number' ? code : undefined,
      reason: undefined,
      message: `${error.message}${cause}`,
      causes: [],
      fields: [],
    };
  }
  return { status: undefined, reason: undefined, message: String(error), causes: [], fields: [] };
}

interface StatusBody {
  reason: string | undefined;
  message: string | undefined;
  causes: string[];
  fields: string[];
}

const NO_STATUS = { reason: undefined, message: undefined, causes: [], fields: [] };

function statusBody(body: unknown): StatusBody {
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return { ...NO_STATUS, message: body === '' ? undefined : body };
    }
  }
  if (!isRecord(parsed)) return NO_STATUS;
  const details = record(parsed['details'])['causes'];
  const causes = Array.isArray(details) ? details.map(record) : [];
  // A StatusCause's type travels as `reason` in JSON.
  const each = (key: string): string[] =>
    [...new Set(causes.map((c) => text(c[key])))].filter((t): t is string => t !== undefined);
  return {
    reason: text(parsed['reason']),
    message: text(parsed['message']),
    causes: each('reason'),
    fields: each('field'),
  };
}

/**
 * The request is invalid as it stands: the API server's validation rejected the fields it
 * names (400 or 422 with causes that name a field). Sending it again cannot succeed; only a
 * change to the object or to what is sent can. An admission policy's denial names no field:
 * it may pass once the admission policy changes.
 */
export const isInvalid = (failure: ApiFailure): boolean =>
  (failure.status === 400 || failure.status === 422) && failure.fields.length > 0;

/** Worth retrying: no response, throttled, or the server's fault. */
export const isRetryable = (failure: ApiFailure): boolean =>
  failure.status === undefined || failure.status === 429 || failure.status >= 500;
