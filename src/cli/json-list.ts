/**
 * Reads a JSON `List` one item at a time. The bytes are scanned for where each value of the
 * top-level object and each element of its `items` array begins and ends (strings skipped with
 * a native search for the closing quote), and only that slice is given to `JSON.parse`. So the
 * whole List never exists as one string or one object tree: at 150,000 pods the caller keeps
 * its compact form of each item and the raw item is garbage at once.
 */

/**
 * JSON that does not parse: `offset` is the byte where the problem was found, `item` the
 * index of the List item it lies in, if any.
 */
export class JsonSyntaxError extends Error {
  readonly offset: number;
  readonly item: number | undefined;

  constructor(message: string, offset: number, item?: number) {
    super(message);
    this.name = 'JsonSyntaxError';
    this.offset = offset;
    this.item = item;
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/**
 * How many bytes of items one JSON.parse reads at least, on the fast path. The run's text, and
 * the array it is wrapped in, stay below V8's large-object size (128 KiB): larger strings are
 * each mapped afresh and count towards the old generation, whose collections they then start
 * (at 150,000 pods, runs of 1 MiB took 11 full collections and 335,000 page faults where runs
 * of 96 KiB take 6 and 255,000).
 */
const RUN_BYTES = 96 * 1024;

const isSpace = (c: number | undefined): boolean =>
  c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** How far the items were read: `next` is after the array's `]` when `done`, else an item. */
export interface ItemsRead {
  readonly next: number;
  readonly done: boolean;
  /** The index of the item at `next`. */
  readonly index: number;
}

/**
 * Where the items of a pretty-printed List are read by others (worker threads, see
 * parallel-list.ts): `claim` is given the offset of the first item and the separator between
 * items, and says where this reader stops (the offset of a separator), or undefined to read
 * them all itself. From there `rest` takes the items the others read, in order, into the
 * caller's snapshot, and says how far that went: where the others could not read, this
 * reader reads on itself, so whatever is wrong there is reported as it would have been.
 */
export interface ItemsSplit {
  readonly claim: (first: number, separator: Uint8Array) => number | undefined;
  readonly rest: (next: number, index: number) => ItemsRead;
}

/**
 * More of the input, for a List that is still arriving: all the bytes read so far after
 * reading on at least `atLeast` more, or undefined when there was nothing more to read.
 */
export type MoreBytes = (atLeast: number) => Uint8Array | undefined;

/** The scanner over the bytes read so far, and how to read on (none once all is read). */
interface Source {
  scan: Scanner;
  more: MoreBytes | undefined;
}

/** Reads on at least `atLeast` bytes; false when there were none. */
function grow(source: Source, atLeast: number): boolean {
  const next = source.more?.(atLeast);
  if (next === undefined) {
    source.more = undefined;
    return false;
  }
  source.scan = scanner(next);
  return true;
}

/** Reads the rest of the input. */
function readWhole(source: Source): void {
  while (grow(source, Infinity));
}

/**
 * Reads the top-level object of `bytes`: each element of an `items` array goes to `onItem`
 * as it is parsed; the other members are returned. Throws JsonSyntaxError; whatever `onItem`
 * throws goes through. Given `more`, `bytes` is what has arrived so far: kubectl's runs of
 * items are parsed as they arrive, and anything else once the input is whole (so a syntax
 * error is found, and placed, in the whole input).
 */
export function readJsonList(
  bytes: Uint8Array,
  onItem: (item: unknown, index: number) => void,
  split?: ItemsSplit,
  more?: MoreBytes,
): { readonly members: Record<string, unknown>; readonly hasItems: boolean } {
  const source: Source = { scan: scanner(bytes), more };
  if (more !== undefined) {
    grow(source, 2 * RUN_BYTES);
    try {
      return readList(source, onItem, split);
    } catch (err) {
      // Cut short before the first item (a member longer than what had arrived), or broken:
      // read again from the whole input, nothing was given to onItem yet.
      if (!(err instanceof NotYet)) throw err;
      readWhole(source);
    }
  }
  return readList(source, onItem, split);
}

/** The input ended, so far, before the first item: read it whole and begin again. */
class NotYet extends Error {}

function readList(
  source: Source,
  onItem: (item: unknown, index: number) => void,
  split?: ItemsSplit,
): { readonly members: Record<string, unknown>; readonly hasItems: boolean } {
  const members: Record<string, unknown> = {};
  let hasItems = false;
  /**
   * Runs one step of the scan. While the input still arrives, a step before the first item
   * that finds the input broken may only have found its end so far: begin again, whole.
   */
  const step = <T>(run: (scan: Scanner) => T): T => {
    if (hasItems || source.more === undefined) return run(source.scan);
    try {
      return run(source.scan);
    } catch (err) {
      if (err instanceof JsonSyntaxError) throw new NotYet();
      throw err;
    }
  };
  const byte = (at: number): number | undefined => source.scan.bytes[at];

  let i = step((scan) => scan.skipSpace(0));
  if (byte(i) !== OPEN_BRACE) step((scan) => scan.expect(i, 'a JSON object'));
  i = step((scan) => scan.skipSpace(i + 1));
  if (byte(i) === CLOSE_BRACE) i++;
  else {
    for (;;) {
      if (byte(i) !== QUOTE) step((scan) => scan.expect(i, 'a member name'));
      const keyEnd = step((scan) => scan.endOfString(i));
      const key = String(step((scan) => scan.parse(i, keyEnd)));
      i = step((scan) => scan.skipSpace(keyEnd));
      if (byte(i) !== COLON) step((scan) => scan.expect(i, '":"'));
      i = step((scan) => scan.skipSpace(i + 1));
      if (key === 'items' && byte(i) === OPEN_BRACKET) {
        const first = source.scan.skipSpace(i + 1);
        // The first item, and kubectl's indentation before it, must have arrived.
        if (source.more !== undefined && first + RUN_BYTES >= source.scan.bytes.length)
          throw new NotYet();
        hasItems = true;
        if (byte(first) === CLOSE_BRACKET) {
          readWhole(source);
          i = first + 1;
        } else {
          const separator = itemSeparator(source.scan.bytes, i, first);
          const stop = separator === undefined ? undefined : split?.claim(first, separator);
          let read = readItems(source, first, 0, onItem, separator, stop);
          // Stopped at `stop`: the others read the rest, and this reader what they could not.
          if (!read.done && split !== undefined) read = split.rest(read.next, read.index);
          if (!read.done) read = readItems(source, read.next, read.index, onItem, separator);
          i = read.next;
        }
      } else {
        const end = step((scan) => scan.endOfValue(i));
        members[key] = step((scan) => scan.parse(i, end));
        i = end;
      }
      const after = step((scan) => scan.afterValue(i, CLOSE_BRACE, 'a member'));
      i = after.next;
      if (after.done) break;
    }
  }
  // A List without items: what follows it must be read too.
  if (source.more !== undefined) throw new NotYet();
  i = source.scan.skipSpace(i);
  if (i < source.scan.bytes.length) source.scan.expect(i, 'nothing after the List');
  return { members, hasItems };
}

/**
 * Pretty-printed JSON (kubectl's) separates items by `},` and the indentation that precedes
 * the first item (`open` is the array's `[`, `first` the first item): nested objects are
 * indented deeper, and strings hold no newline. Undefined for compact JSON.
 */
function itemSeparator(bytes: Uint8Array, open: number, first: number): Uint8Array | undefined {
  const indent = bytes.subarray(open + 1, first);
  if (!indent.includes(0x0a)) return undefined;
  return Buffer.concat([Buffer.from('},'), indent, Buffer.from('{')]);
}

/**
 * Reads the items of a List's `items` array from `i`, the start of an item, each to `onItem`
 * with its index (from `index`): to the array's `]` (`done`, `next` after it), or, given
 * `stop` (the offset of a `separator`), to the item that ends there (`next` the start of the
 * item after it). A List's items read from any item on, on other threads, as by
 * readJsonList (see parallel-list.ts); `bytes` may be the tail of a List from `i` on.
 */
export function readJsonItems(
  bytes: Uint8Array,
  i: number,
  separator: Uint8Array | undefined,
  stop: number | undefined,
  onItem: (item: unknown, index: number) => void,
): ItemsRead {
  return readItems({ scan: scanner(bytes), more: undefined }, i, 0, onItem, separator, stop);
}

/**
 * The items from `first` (an item's `{`) to `last` (the `}` that ends the run) as one array,
 * or undefined when they do not parse. The bytes on either side (white space before the
 * item, the `,` after the run) are made `[` and `]` for the parse and then put back: the run
 * is decoded into one string, not copied again into a wrapped one.
 */
function parseRun(text: Buffer, first: number, last: number): unknown[] | undefined {
  const before = text[first - 1] as number;
  const after = text[last + 1] as number;
  text[first - 1] = OPEN_BRACKET;
  text[last + 1] = CLOSE_BRACKET;
  try {
    return JSON.parse(text.toString('utf8', first - 1, last + 2)) as unknown[];
  } catch {
    return undefined;
  } finally {
    text[first - 1] = before;
    text[last + 1] = after;
  }
}

/** Reads items from `from` (see readJsonItems); while the input arrives, runs as they come. */
function readItems(
  source: Source,
  from: number,
  firstIndex: number,
  onItem: (item: unknown, index: number) => void,
  separator: Uint8Array | undefined,
  stop?: number,
): ItemsRead {
  let i = from;
  let index = firstIndex;
  if (separator !== undefined) {
    // Runs of whole items cut at the separator are parsed in one JSON.parse, with no
    // byte-by-byte scan. A cut that is not an item boundary cannot parse (its brackets do
    // not balance), and then the exact scan below takes over.
    for (;;) {
      const { text } = source.scan;
      let cut = text.indexOf(separator, i + RUN_BYTES);
      if (cut < 0 && grow(source, RUN_BYTES)) continue;
      if (stop !== undefined && (cut < 0 || cut > stop)) cut = stop;
      if (cut < 0 || cut < i) break;
      const run = parseRun(text, i, cut);
      if (run === undefined) break;
      for (const item of run) onItem(item, index++);
      i = cut + separator.length - 1;
      if (cut === stop) return { next: i, done: false, index };
    }
  }
  // The exact scan, and any error it finds, over the whole input.
  readWhole(source);
  const { endOfValue, afterValue, parse } = source.scan;
  for (;;) {
    let item: unknown;
    let end: number;
    try {
      end = endOfValue(i);
      item = parse(i, end);
    } catch (err) {
      if (!(err instanceof JsonSyntaxError)) throw err;
      throw new JsonSyntaxError(err.message, err.offset, index);
    }
    onItem(item, index++);
    if (stop !== undefined && end === stop + 1) {
      // The exact scan reached the stop: the item after the separator is the others'.
      return { next: stop + (separator?.length ?? 1) - 1, done: false, index };
    }
    const after = afterValue(end, CLOSE_BRACKET, 'an item');
    i = after.next;
    if (after.done) return { next: i, done: true, index };
  }
}

type Scanner = ReturnType<typeof scanner>;

/** The byte-level readers over `bytes`. */
function scanner(bytes: Uint8Array) {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.length;
  const skipSpace = (i: number): number => {
    while (isSpace(bytes[i])) i++;
    return i;
  };
  const expect = (i: number, what: string): never => {
    throw new JsonSyntaxError(i >= n ? 'unexpected end of input' : `expected ${what}`, i);
  };
  /** The index after the string whose opening quote is at `i`. */
  const endOfString = (i: number): number => {
    let j = i + 1;
    for (;;) {
      j = bytes.indexOf(QUOTE, j);
      if (j < 0) throw new JsonSyntaxError('unexpected end of input in a string', n);
      let backslashes = 0;
      while (bytes[j - 1 - backslashes] === BACKSLASH) backslashes++;
      if (backslashes % 2 === 0) return j + 1;
      j++;
    }
  };
  /** The index after the value that starts at `i`; JSON.parse checks what is inside. */
  const endOfValue = (i: number): number => {
    const c = bytes[i];
    if (c === QUOTE) return endOfString(i);
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      let depth = 0;
      for (let j = i; j < n; j++) {
        const d = bytes[j];
        if (d === QUOTE) j = endOfString(j) - 1;
        else if (d === OPEN_BRACE || d === OPEN_BRACKET) depth++;
        else if ((d === CLOSE_BRACE || d === CLOSE_BRACKET) && --depth === 0) return j + 1;
      }
      throw new JsonSyntaxError('unexpected end of input', n);
    }
    let j = i;
    while (j < n) {
      const d = bytes[j];
      if (isSpace(d) || d === COMMA || d === CLOSE_BRACE || d === CLOSE_BRACKET) break;
      j++;
    }
    if (j === i) expect(i, 'a value');
    return j;
  };
  /**
   * Past what follows a value that ends at `at`: the closing `close` of its array or object
   * (`done`), or the comma before the next value and the spaces after it.
   */
  const afterValue = (
    at: number,
    close: number,
    what: string,
  ): { readonly next: number; readonly done: boolean } => {
    const j = skipSpace(at);
    if (bytes[j] === close) return { next: j + 1, done: true };
    if (bytes[j] !== COMMA) expect(j, `"," or "${String.fromCharCode(close)}" after ${what}`);
    return { next: skipSpace(j + 1), done: false };
  };
  const parse = (start: number, end: number): unknown => {
    try {
      return JSON.parse(text.toString('utf8', start, end));
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      // V8 says where when it can ("... in JSON at position 12 (line 1 column 13)").
      const at = /^(.*?)(?:,? in JSON)? at position (\d+)/s.exec(err.message);
      const reason = (at?.[1] ?? err.message).split('\n')[0] ?? '';
      throw new JsonSyntaxError(reason, start + Number(at?.[2] ?? 0));
    }
  };
  return { bytes, text, skipSpace, expect, endOfString, endOfValue, afterValue, parse };
}

/** Line and column (1-based) of a byte offset, for error messages. */
export function lineAndColumn(bytes: Uint8Array, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let j = bytes.indexOf(0x0a); j >= 0 && j < offset; j = bytes.indexOf(0x0a, j + 1)) {
    line++;
    lineStart = j + 1;
  }
  return { line, column: offset - lineStart + 1 };
}
