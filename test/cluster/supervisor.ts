// Runs the control-plane processes of one local cluster and guarantees they
// do not outlive the Node.js process that started them.
//
// Every component runs in its own process group (detached), so a Ctrl-C in the
// terminal reaches only Node.js, which then shuts the cluster down in order.
// A watchdog shell holds the read end of a pipe from Node.js and learns each
// component's pid through it; when Node.js dies for any reason, SIGKILL
// included, the pipe closes and the watchdog kills the components and removes
// the working directory. stop() is the orderly path and retires the watchdog.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';

// $1 is the directory to remove ("" to keep it). Reads "<pid>" lines until
// EOF, then kills those pids.
const WATCHDOG_SCRIPT = `
pids=""
while read -r pid; do pids="$pids $pid"; done
for pid in $pids; do kill -KILL "$pid" 2>/dev/null; done
if [ -n "$1" ]; then sleep 0.2; rm -rf -- "$1"; fi
`;

const STOP_GRACE_MS = 3000;

interface Component {
  name: string;
  child: ChildProcess;
  logFile: string;
  /** Set once the process has exited; a description such as "exit code 1". */
  exit?: string;
  exited: Promise<void>;
}

export class Supervisor {
  readonly workDir: string;
  readonly logDir: string;
  readonly #keepDir: boolean;
  readonly #components: Component[] = [];
  readonly #watchdog: ChildProcess;
  #stopping = false;
  readonly #onExit = (): void => {
    this.#killAllNow();
  };

  constructor(workDir: string, keepDir: boolean) {
    this.workDir = workDir;
    this.logDir = join(workDir, 'logs');
    this.#keepDir = keepDir;
    mkdirSync(this.logDir, { recursive: true });
    this.#watchdog = spawn('sh', ['-c', WATCHDOG_SCRIPT, 'watchdog', keepDir ? '' : workDir], {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    // Neither the watchdog nor its pipe may keep Node.js alive.
    this.#watchdog.unref();
    if (this.#watchdog.stdin instanceof Socket) this.#watchdog.stdin.unref();
    // On a normal exit without stop(), kill at once rather than wait for the
    // watchdog to notice (it still removes the directory).
    process.on('exit', this.#onExit);
  }

  /** Starts a component; its stdout and stderr go to logs/<name>.log. */
  start(name: string, binary: string, args: string[], env: NodeJS.ProcessEnv = process.env): void {
    const logFile = join(this.logDir, `${name}.log`);
    const fd = openSync(logFile, 'a');
    const child = spawn(binary, args, {
      cwd: this.workDir,
      env,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    const component: Component = { name, child, logFile, exited: Promise.resolve() };
    component.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        component.exit = signal === null ? `exit code ${String(code)}` : `signal ${signal}`;
        resolve();
      });
      child.once('error', (error) => {
        component.exit = `spawn failed: ${error.message}`;
        resolve();
      });
    });
    child.unref();
    if (child.pid !== undefined) this.#watchdog.stdin?.write(`${child.pid}\n`);
    this.#components.push(component);
  }

  /**
   * Stops one component and forgets it, so that it can be started again under the same name
   * (its log continues) while the others keep running. SIGKILL, the default, is a crash:
   * no graceful shutdown. Other signals get the grace period of stop().
   */
  async stopComponent(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const component = this.#components.find((c) => c.name === name && running(c));
    if (component === undefined) throw new Error(`${name} is not running`);
    if (signal === 'SIGKILL') {
      signalGroup(component.child, signal);
      await component.exited;
    } else {
      await this.#terminate(component);
    }
    this.#components.splice(this.#components.indexOf(component), 1);
  }

  /** Throws, with the end of its log, if a component has died. */
  assertRunning(): void {
    const dead = this.#components.find((component) => component.exit !== undefined);
    if (dead !== undefined) {
      throw new Error(`${dead.name} stopped (${String(dead.exit)}):\n${this.logTail(dead.name)}`);
    }
  }

  logTail(name: string, lines = 25): string {
    try {
      return readFileSync(join(this.logDir, `${name}.log`), 'utf8')
        .trimEnd()
        .split('\n')
        .slice(-lines)
        .map((line) => `  | ${line}`)
        .join('\n');
    } catch {
      return '  | (no log)';
    }
  }

  /** Resident memory of the running components, from /proc (Linux). */
  rssBytes(): number {
    return Object.values(this.rssByComponent()).reduce((sum, bytes) => sum + bytes, 0);
  }

  /** Resident memory of each running component by name, from /proc (Linux; else empty). */
  rssByComponent(): Record<string, number> {
    return this.#fromProc('status', (status) => {
      const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
      return kib === undefined ? undefined : Number(kib) * 1024;
    });
  }

  /**
   * CPU seconds (user + system) each running component has used since it started, from
   * /proc/PID/stat (Linux; else empty). Ticks are 1/100 s on the kernels this runs on.
   */
  cpuSecondsByComponent(): Record<string, number> {
    return this.#fromProc('stat', (stat) => {
      // The fields after the command name, which is in parentheses and may hold spaces.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
      return Number.isFinite(ticks) ? ticks / 100 : undefined;
    });
  }

  /** One figure per running component, read from its /proc/PID/`file`. */
  #fromProc(file: string, read: (text: string) => number | undefined): Record<string, number> {
    const out: Record<string, number> = {};
    for (const { name, child, exit } of this.#components) {
      if (exit !== undefined || child.pid === undefined) continue;
      try {
        const value = read(readFileSync(`/proc/${String(child.pid)}/${file}`, 'utf8'));
        if (value !== undefined) out[name] = value;
      } catch {
        // Not Linux, or the process just exited.
      }
    }
    return out;
  }

  /** SIGTERM in reverse start order, SIGKILL after a grace period, then clean up. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const component of [...this.#components].reverse()) {
      await this.#terminate(component);
    }
    // Everything it knows about is gone, so the watchdog may go too.
    this.#watchdog.kill('SIGKILL');
    process.off('exit', this.#onExit);
    if (!this.#keepDir) rmSync(this.workDir, { recursive: true, force: true });
  }

  async #terminate(component: Component): Promise<void> {
    if (!running(component)) return;
    signalGroup(component.child, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, STOP_GRACE_MS);
    });
    await Promise.race([component.exited, grace]);
    clearTimeout(timer);
    if (running(component)) {
      signalGroup(component.child, 'SIGKILL');
      // The child is unref'd: hold the event loop open until its exit is seen, or Node
      // may end with this await unsettled.
      const hold = setInterval(() => undefined, 1_000);
      await component.exited;
      clearInterval(hold);
    }
  }

  #killAllNow(): void {
    for (const component of this.#components) {
      if (component.exit === undefined) signalGroup(component.child, 'SIGKILL');
    }
  }
}

// A function, not an inline test: exit changes behind TypeScript's back.
function running(component: Component): boolean {
  return component.exit === undefined;
}

/** Signals the child's whole process group (it leads one: spawned detached). */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}
