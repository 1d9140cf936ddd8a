/**
 * A problem with one field of one object, e.g.
 * `PlacementPolicy shop/spread-web: spec.affinity.podAntiAffinity.required[0].labelSelector.matchExpressions[0].operator: "Inn" is not one of In, NotIn, Exists, DoesNotExist`.
 */
export class FieldError extends Error {
  readonly field: string;
  readonly problem: string;

  constructor(field: string, problem: string) {
    super(`${field}: ${problem}`);
    this.name = 'FieldError';
    this.field = field;
    this.problem = problem;
  }

  /** The same problem, reported against a named object. */
  forObject(object: string): InvalidObjectError {
    return new InvalidObjectError(object, this.field, this.problem);
  }
}

export class InvalidObjectError extends Error {
  readonly object: string;
  readonly field: string;
  readonly problem: string;

  constructor(object: string, field: string, problem: string) {
    super(`${object}: ${field}: ${problem}`);
    this.name = 'InvalidObjectError';
    this.object = object;
    this.field = field;
    this.problem = problem;
  }
}

/** Adds to `errors` that `value`, at `field`, is not one of `allowed`, unless it is. */
export function checkOneOf(
  errors: FieldError[],
  field: string,
  value: string,
  allowed: readonly string[],
): void {
  if (!allowed.includes(value))
    errors.push(new FieldError(field, `"${value}" is not one of ${allowed.join(', ')}`));
}
