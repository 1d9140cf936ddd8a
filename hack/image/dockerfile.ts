// A small Dockerfile reader: enough of the syntax for this repository's Dockerfile
// (line continuations, comments, ARG substitution, FROM ... AS, exec- and shell-form
// CMD). Shared by hack/image/simulate.ts, which runs the build stages without a Docker
// engine, and test/unit/dockerfile.test.ts, which checks the file's shape.

export interface Instruction {
  /** Upper-cased keyword: FROM, RUN, COPY, ... */
  readonly keyword: string;
  /** Everything after the keyword, continuation lines joined with a space. */
  readonly args: string;
  /** 1-based line where the instruction starts. */
  readonly line: number;
}

export interface Stage {
  /** `AS name`, or the stage's index as a string when unnamed. */
  readonly name: string;
  /** The image after ARG substitution. */
  readonly image: string;
  readonly instructions: readonly Instruction[];
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  readonly globalArgs: Readonly<Record<string, string>>;
  readonly stages: readonly Stage[];
}

/** Splits a Dockerfile into instructions: comments dropped, `\` continuations joined. */
export function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: { parts: string[]; line: number } | undefined;
  const lines = text.split('\n');
  for (const [index, raw] of lines.entries()) {
    const trimmed = raw.trim();
    // A comment line inside a continuation is dropped, as Docker does.
    if (trimmed.startsWith('#') || (trimmed === '' && pending === undefined)) continue;
    const continued = trimmed.endsWith('\\');
    const body = continued ? trimmed.slice(0, -1).trimEnd() : trimmed;
    pending ??= { parts: [], line: index + 1 };
    if (body !== '') pending.parts.push(body);
    if (!continued) {
      const joined = pending.parts.join(' ');
      const match = /^(\S+)\s*(.*)$/s.exec(joined);
      if (match?.[1] !== undefined) {
        out.push({ keyword: match[1].toUpperCase(), args: match[2] ?? '', line: pending.line });
      }
      pending = undefined;
    }
  }
  return out;
}

/** `${NAME}`, `${NAME:-default}` and `$NAME` from `vars`; unknown names become ''. */
export function substitute(text: string, vars: Readonly<Record<string, string>>): string {
  return text.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (_m, braced: string | undefined, fallback: string | undefined, bare: string | undefined) => {
      const name = braced ?? bare ?? '';
      const value = vars[name];
      return value !== undefined && value !== '' ? value : (fallback ?? '');
    },
  );
}

/** `NAME=value` or `NAME`, with optional double quotes around the value. */
export function parseArg(args: string): [string, string | undefined] {
  const eq = args.indexOf('=');
  if (eq < 0) return [args.trim(), undefined];
  return [args.slice(0, eq).trim(), unquote(args.slice(eq + 1).trim())];
}

export function unquote(value: string): string {
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"')
    ? value.slice(1, -1)
    : value;
}

/** Parses the file into global ARGs and stages; `buildArgs` override ARG defaults. */
export function parseDockerfile(
  text: string,
  buildArgs: Readonly<Record<string, string>> = {},
): Dockerfile {
  const globalArgs: Record<string, string> = {};
  const stages: { name: string; image: string; instructions: Instruction[] }[] = [];
  for (const ins of instructions(text)) {
    const current = stages.at(-1);
    if (ins.keyword === 'FROM') {
      const match = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (match?.[1] === undefined)
        throw new Error(`Dockerfile:${String(ins.line)}: cannot read FROM ${ins.args}`);
      const vars = { ...globalArgs, ...buildArgs };
      stages.push({
        name: match[2] ?? String(stages.length),
        image: substitute(match[1], vars),
        instructions: [],
      });
    } else if (current === undefined) {
      if (ins.keyword !== 'ARG') {
        throw new Error(`Dockerfile:${String(ins.line)}: ${ins.keyword} before the first FROM`);
      }
      const [name, value] = parseArg(ins.args);
      globalArgs[name] = value ?? '';
    } else {
      current.instructions.push(ins);
    }
  }
  return { globalArgs, stages };
}

/** Exec form (`["a", "b"]`) as a list; undefined for shell form. */
export function execForm(args: string): string[] | undefined {
  const trimmed = args.trim();
  if (!trimmed.startsWith('[')) return undefined;
  const parsed: unknown = JSON.parse(trimmed);
  if (!Array.isArray(parsed) || !parsed.every((x): x is string => typeof x === 'string')) {
    throw new Error(`not a JSON array of strings: ${trimmed}`);
  }
  return parsed;
}

/** `KEY=value KEY2="value 2"` pairs, as LABEL and ENV write them. */
export function keyValues(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  const pair = /([A-Za-z0-9_.-]+)=("(?:[^"\\]|\\.)*"|\S+)/g;
  for (const m of args.matchAll(pair)) {
    if (m[1] !== undefined && m[2] !== undefined) out[m[1]] = unquote(m[2]);
  }
  return out;
}

/** A COPY instruction: flags, sources and destination. */
export interface Copy {
  readonly from: string | undefined;
  readonly chown: string | undefined;
  readonly sources: readonly string[];
  readonly dest: string;
}

export function parseCopy(args: string): Copy {
  const words = args.trim().split(/\s+/);
  let from: string | undefined;
  let chown: string | undefined;
  while (words[0]?.startsWith('--') === true) {
    const flag = words.shift() ?? '';
    if (flag.startsWith('--from=')) from = flag.slice('--from='.length);
    else if (flag.startsWith('--chown=')) chown = flag.slice('--chown='.length);
    else throw new Error(`COPY flag ${flag} is not understood by hack/image/dockerfile.ts`);
  }
  const dest = words.pop();
  if (dest === undefined || words.length === 0)
    throw new Error(`COPY ${args}: needs sources and a destination`);
  return { from, chown, sources: words, dest };
}
