// The worker process that prepares changes: forked on first use, kept between changes, and
// forked again after it dies. A death mid-change answers that change with WORKER_DIED; the
// serving process has committed nothing of it, so nothing is half-applied.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { PrepareReply, PrepareRequest, SerializedError } from './prepare';

/** How to start the worker process. */
export interface WorkerLaunch {
  /**
   * A module that installs a backend (and registers plugin ops), exporting `setup()` (or a
   * default function) that may return the op registry the model needs. Absolute path or file URL.
   */
  setup: string;
  /** The worker entry (default: this package's built `worker.js`). */
  modulePath?: string;
  /** Node flags for the worker process (default: none). */
  execArgv?: string[];
}

type Message = PrepareReply | { type: 'ready' } | { type: 'setupFailed'; error: SerializedError } | { type: 'progress'; id: number; stage: string };

export class ChangeWorker {
  private child: ChildProcess | undefined;
  private started: Promise<ChildProcess> | undefined;
  /** Called as the worker reaches each stage of a change (tests use it to interrupt one). */
  onProgress: ((stage: string, pid: number) => void) | undefined;

  constructor(private readonly launch: WorkerLaunch) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private start(): Promise<ChildProcess> {
    if (this.started) return this.started;
    const modulePath = this.launch.modulePath ?? fileURLToPath(new URL('./worker.js', import.meta.url));
    const child = fork(modulePath, [], { execArgv: this.launch.execArgv ?? [], serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child = child;
    const forget = () => {
      if (this.child === child) {
        this.child = undefined;
        this.started = undefined;
      }
    };
    child.once('exit', forget);
    this.started = new Promise<ChildProcess>((resolve, reject) => {
      const onMessage = (message: Message) => {
        if (message.type === 'ready') {
          child.off('message', onMessage);
          resolve(child);
        } else if (message.type === 'setupFailed') {
          child.off('message', onMessage);
          child.kill('SIGKILL');
          reject(new Error(`The worker's setup module failed: ${message.error.message}`));
        }
      };
      child.on('message', onMessage);
      child.once('exit', (code, signal) => reject(new Error(`The worker exited during setup (code ${String(code)}, signal ${String(signal)}).`)));
      child.send({ type: 'setup', module: this.launch.setup });
    });
    this.started.catch(forget);
    return this.started;
  }

  /** Prepares one change; never throws (a dead or failing worker is a 'failed' reply). */
  async prepare(request: PrepareRequest): Promise<PrepareReply> {
    let child: ChildProcess;
    try {
      child = await this.start();
    } catch (error) {
      return { type: 'failed', id: request.id, error: { code: 'WORKER_DIED', message: (error as Error).message } };
    }
    return new Promise<PrepareReply>((resolve) => {
      const done = (reply: PrepareReply) => {
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve(reply);
      };
      const onMessage = (message: Message) => {
        if (message.type === 'progress' && message.id === request.id) this.onProgress?.(message.stage, child.pid ?? -1);
        else if ('id' in message && message.id === request.id && message.type !== 'progress') done(message);
      };
      const onExit = (code: number | null, signal: string | null) =>
        done({ type: 'failed', id: request.id, error: { code: 'WORKER_DIED', message: `The worker process died while preparing change ${request.id} (code ${String(code)}, signal ${String(signal)}).` } });
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.send(request);
    });
  }

  /** Ends the worker process (if any) and waits for it to exit. */
  async close(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    this.started = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }
}
