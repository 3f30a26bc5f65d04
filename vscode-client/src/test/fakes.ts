// Small recording fakes shared by the unit tests.

import type { LogOutputChannel } from 'vscode';
import { State } from 'vscode-languageclient/node';

import type { ClientFactory, ClientLike } from '../server';
import { DEFAULTS, type Settings } from '../settings';
import { StatusBar, type StatusItemLike } from '../status';

export function settings(overrides: Partial<Settings> = {}): Settings {
  return {
    ...DEFAULTS,
    languages: { ...DEFAULTS.languages },
    ...overrides,
  };
}

export class FakeItem implements StatusItemLike {
  text = '';
  tooltip: unknown;
  command: unknown;
  backgroundColor: unknown;
  visible = false;
  disposed = false;

  show(): void {
    this.visible = true;
  }

  dispose(): void {
    this.disposed = true;
  }
}

export const ERROR_BG = { id: 'statusBarItem.errorBackground' };

export function statusBar(): { status: StatusBar; item: FakeItem } {
  const item = new FakeItem();
  return { status: new StatusBar(item, ERROR_BG), item };
}

export class FakeLog {
  readonly lines: string[] = [];

  info(message: string): void {
    this.lines.push(`info: ${message}`);
  }

  warn(message: string): void {
    this.lines.push(`warn: ${message}`);
  }

  error(message: string): void {
    this.lines.push(`error: ${message}`);
  }

  asChannel(): LogOutputChannel {
    return this as unknown as LogOutputChannel;
  }
}

type StateListener = (event: { oldState: State; newState: State }) => void;

/** A LanguageClient stand-in that records what the controller asks of it. */
export class FakeClient {
  state: State = State.Stopped;
  readonly notifications: { method: string; params: unknown }[] = [];
  readonly requests: { method: string; params: unknown }[] = [];
  startError: Error | undefined;
  requestResult: unknown = null;
  disposed = 0;
  private readonly listeners = new Set<StateListener>();

  constructor(
    readonly serverOptions: unknown,
    readonly clientOptions: import('vscode-languageclient').LanguageClientOptions,
  ) {}

  async start(): Promise<void> {
    this.setState(State.Starting);
    if (this.startError !== undefined) {
      this.setState(State.Stopped);
      throw this.startError;
    }
    this.setState(State.Running);
  }

  async dispose(): Promise<void> {
    this.disposed += 1;
    this.setState(State.Stopped);
  }

  async sendNotification(type: { method: string }, params: unknown): Promise<void> {
    this.notifications.push({ method: type.method, params });
  }

  async sendRequest(type: { method: string }, params: unknown): Promise<unknown> {
    this.requests.push({ method: type.method, params });
    return this.requestResult;
  }

  onDidChangeState(listener: StateListener): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** Simulates the process dying or a state change driven by the library. */
  setState(newState: State): void {
    const oldState = this.state;
    this.state = newState;
    for (const listener of [...this.listeners]) {
      listener({ oldState, newState });
    }
  }
}

export function clientFactory(configure: (client: FakeClient) => void = () => undefined): {
  factory: ClientFactory;
  clients: FakeClient[];
} {
  const clients: FakeClient[] = [];
  const factory: ClientFactory = (serverOptions, clientOptions) => {
    const client = new FakeClient(serverOptions, clientOptions);
    configure(client);
    clients.push(client);
    return client as unknown as ClientLike;
  };
  return { factory, clients };
}

export class FakeSecrets {
  readonly values = new Map<string, string>();

  async get(key: string): Promise<string | undefined> {
    return this.values.get(key);
  }

  async store(key: string, value: string): Promise<void> {
    this.values.set(key, value);
  }

  async delete(key: string): Promise<void> {
    this.values.delete(key);
  }
}

/** A promise with its resolve function exposed, to hold a request open. */
export function deferred<T>(): { promise: Promise<T>; resolve(value: T): void; reject(error: unknown): void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
