// A `vscode` module for unit tests under `node --test` (VS Code itself cannot run here).
//
// Loaded with `--require`, it hooks Node's module loader so that `require('vscode')` returns the
// object below. The members the extension uses are small recording fakes (`state` holds what they
// recorded; `reset()` clears it between tests). Everything else is answered by a Proxy:
// vscode-languageclient subclasses vscode classes at import time (`class X extends
// vscode.CompletionItem`) and touches many APIs once a client runs, so unknown capitalised names
// are empty classes and unknown functions return an inert value that is disposable, iterable and
// callable.

import Module = require('node:module');

type Listener<T> = (event: T) => unknown;

export class EventEmitter<T> {
  private readonly listeners = new Set<Listener<T>>();

  readonly event = (listener: Listener<T>): Disposable => {
    this.listeners.add(listener);
    return new Disposable(() => this.listeners.delete(listener));
  };

  fire(event: T): void {
    for (const listener of [...this.listeners]) {
      listener(event);
    }
  }

  dispose(): void {
    this.listeners.clear();
  }
}

export class Disposable {
  static from(...disposables: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => disposables.forEach((d) => d.dispose()));
  }

  constructor(private readonly onDispose: () => unknown) {}

  dispose(): void {
    this.onDispose();
  }
}

export class ThemeColor {
  constructor(readonly id: string) {}
}

export class CancellationError extends Error {
  constructor() {
    super('Canceled');
    this.name = 'Canceled';
  }
}

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly path: string,
  ) {}

  static file(path: string): Uri {
    return new Uri('file', path);
  }

  static parse(value: string): Uri {
    const match = /^([a-z][\w+.-]*):(?:\/\/)?(.*)$/i.exec(value);
    return match === null ? new Uri('file', value) : new Uri(match[1] ?? 'file', match[2] ?? '');
  }

  get fsPath(): string {
    return this.path;
  }

  toString(): string {
    return `${this.scheme}://${this.path}`;
  }

  toJSON(): object {
    return { scheme: this.scheme, path: this.path };
  }
}

export interface FakeStatusItem {
  id: string;
  alignment: number;
  priority: number;
  name: string;
  text: string;
  tooltip: unknown;
  command: unknown;
  backgroundColor: unknown;
  visible: boolean;
  disposed: boolean;
  show(): void;
  hide(): void;
  dispose(): void;
}

export interface FakeLog {
  name: string;
  lines: string[];
  shown: number;
  logLevel: number;
  onDidChangeLogLevel: EventEmitter<number>['event'];
  info(message: string, ...args: unknown[]): void;
  warn(message: string, ...args: unknown[]): void;
  error(message: string | Error, ...args: unknown[]): void;
  debug(message: string, ...args: unknown[]): void;
  trace(message: string, ...args: unknown[]): void;
  append(value: string): void;
  appendLine(value: string): void;
  replace(value: string): void;
  clear(): void;
  show(...args: unknown[]): void;
  hide(): void;
  dispose(): void;
}

export interface FakeDocument {
  uri: Uri;
  fileName: string;
  languageId: string;
  content?: string;
}

export interface FakeFolder {
  uri: Uri;
  name: string;
  index: number;
}

function emptyState() {
  return {
    commands: new Map<string, (...args: unknown[]) => unknown>(),
    executed: [] as { command: string; args: unknown[] }[],
    config: new Map<string, unknown>(),
    configUpdates: [] as { key: string; value: unknown; target: unknown }[],
    configEvents: new EventEmitter<{ affectsConfiguration(section: string): boolean }>(),
    statusItems: [] as FakeStatusItem[],
    logs: [] as FakeLog[],
    info: [] as string[],
    errors: [] as string[],
    inputAnswers: [] as (string | undefined)[],
    inputPrompts: [] as object[],
    opened: [] as FakeDocument[],
    shown: [] as FakeDocument[],
    progress: [] as string[],
    cancelProgress: false,
    folders: [] as FakeFolder[],
    activeEditor: undefined as { document: FakeDocument } | undefined,
  };
}

export let state = emptyState();

export function reset(): void {
  state = emptyState();
}

/** Sets settings (full keys, e.g. `llamita.completionModel`) and fires the change event for them. */
export function setConfig(values: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(values)) {
    state.config.set(key, value);
  }
  const keys = Object.keys(values);
  state.configEvents.fire({
    affectsConfiguration: (section) => keys.some((k) => k === section || k.startsWith(`${section}.`)),
  });
}

function createLog(name: string): FakeLog {
  const lines: string[] = [];
  const levels = new EventEmitter<number>();
  const log: FakeLog = {
    name,
    lines,
    shown: 0,
    logLevel: 2,
    onDidChangeLogLevel: levels.event,
    info: (m) => void lines.push(`[info] ${m}`),
    warn: (m) => void lines.push(`[warn] ${m}`),
    error: (m) => void lines.push(`[error] ${m instanceof Error ? m.message : m}`),
    debug: (m) => void lines.push(`[debug] ${m}`),
    trace: (m) => void lines.push(`[trace] ${m}`),
    append: (v) => void lines.push(v),
    appendLine: (v) => void lines.push(v),
    replace: (v) => void lines.splice(0, lines.length, v),
    clear: () => void lines.splice(0, lines.length),
    show: () => {
      log.shown += 1;
    },
    hide: () => undefined,
    dispose: () => undefined,
  };
  state.logs.push(log);
  return log;
}

function configuration(section: string) {
  const full = (key: string) => (section ? `${section}.${key}` : key);
  return {
    get: (key: string, fallback?: unknown) => (state.config.has(full(key)) ? state.config.get(full(key)) : fallback),
    has: (key: string) => state.config.has(full(key)),
    inspect: () => undefined,
    update: (key: string, value: unknown, target?: unknown) => {
      state.configUpdates.push({ key: full(key), value, target });
      setConfig({ [full(key)]: value });
      return Promise.resolve();
    },
  };
}

const inert: unknown = new Proxy(function inert() {}, {
  get: (_target, property) => {
    if (property === 'then') {
      return undefined; // not a thenable
    }
    if (property === Symbol.iterator) {
      return function* empty() {};
    }
    if (property === Symbol.toPrimitive) {
      return () => '';
    }
    if (property === 'dispose') {
      return () => undefined;
    }
    return inert;
  },
  apply: () => inert,
  construct: () => inert as object,
});

/** Unknown members of a fake namespace are inert instead of missing. */
function withFallback<T extends object>(namespace: T): T {
  return new Proxy(namespace, {
    get: (target, property, receiver) =>
      property in target || typeof property === 'symbol' ? Reflect.get(target, property, receiver) : inert,
  });
}

const window = withFallback({
  createStatusBarItem(id: string, alignment: number, priority: number): FakeStatusItem {
    const item: FakeStatusItem = {
      id,
      alignment,
      priority,
      name: '',
      text: '',
      tooltip: undefined,
      command: undefined,
      backgroundColor: undefined,
      visible: false,
      disposed: false,
      show: () => {
        item.visible = true;
      },
      hide: () => {
        item.visible = false;
      },
      dispose: () => {
        item.disposed = true;
      },
    };
    state.statusItems.push(item);
    return item;
  },
  createOutputChannel: (name: string) => createLog(name),
  showInformationMessage: (message: string) => {
    state.info.push(message);
    return Promise.resolve(undefined);
  },
  showWarningMessage: (message: string) => {
    state.info.push(message);
    return Promise.resolve(undefined);
  },
  showErrorMessage: (message: string) => {
    state.errors.push(message);
    return Promise.resolve(undefined);
  },
  showInputBox: (options: object) => {
    state.inputPrompts.push(options);
    return Promise.resolve(state.inputAnswers.shift());
  },
  showTextDocument: (document: FakeDocument) => {
    state.shown.push(document);
    return Promise.resolve({ document });
  },
  withProgress: (options: { title: string }, task: (progress: object, token: object) => Promise<unknown>) => {
    state.progress.push(options.title);
    const cancel = new EventEmitter<void>();
    const token = { isCancellationRequested: false, onCancellationRequested: cancel.event };
    const running = task({ report: () => undefined }, token);
    if (state.cancelProgress) {
      token.isCancellationRequested = true;
      cancel.fire();
    }
    return running;
  },
  get activeTextEditor() {
    return state.activeEditor;
  },
  visibleTextEditors: [],
});

const workspace = withFallback({
  getConfiguration: (section = '') => configuration(section),
  onDidChangeConfiguration: (listener: Listener<{ affectsConfiguration(section: string): boolean }>) =>
    state.configEvents.event(listener),
  get workspaceFolders() {
    return state.folders;
  },
  getWorkspaceFolder: (uri: Uri) =>
    state.folders.find((f) => uri.scheme === f.uri.scheme && uri.path.startsWith(`${f.uri.path}/`)),
  openTextDocument: (options: { language: string; content: string }) => {
    const document: FakeDocument = {
      uri: Uri.parse(`untitled:Untitled-${state.opened.length + 1}`),
      fileName: `Untitled-${state.opened.length + 1}`,
      languageId: options.language,
      content: options.content,
    };
    state.opened.push(document);
    return Promise.resolve(document);
  },
  textDocuments: [],
});

const commands = withFallback({
  registerCommand: (id: string, handler: (...args: unknown[]) => unknown) => {
    if (state.commands.has(id)) {
      throw new Error(`command '${id}' already exists`);
    }
    state.commands.set(id, handler);
    return new Disposable(() => state.commands.delete(id));
  },
  executeCommand: (command: string, ...args: unknown[]) => {
    state.executed.push({ command, args });
    const handler = state.commands.get(command);
    return Promise.resolve(handler?.(...args));
  },
});

const known: Record<string, unknown> = {
  version: '1.91.0',
  EventEmitter,
  Disposable,
  ThemeColor,
  CancellationError,
  Uri,
  StatusBarAlignment: { Left: 1, Right: 2 },
  ConfigurationTarget: { Global: 1, Workspace: 2, WorkspaceFolder: 3 },
  ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
  window,
  workspace,
  commands,
};

const autoClasses = new Map<string, unknown>();

export const vscode: Record<string, unknown> = new Proxy(known, {
  get: (target, property) => {
    if (typeof property !== 'string') {
      return undefined;
    }
    if (property in target) {
      return target[property];
    }
    if (/^[A-Z]/.test(property)) {
      let cls = autoClasses.get(property);
      if (cls === undefined) {
        // A named empty class: subclassable, constructible, and its enum-like statics are inert.
        cls = new Proxy(class {}, {
          get: (base, key, receiver) => (key in base ? Reflect.get(base, key, receiver) : inert),
        });
        autoClasses.set(property, cls);
      }
      return cls;
    }
    return inert;
  },
});

type Loader = (request: string, parent: unknown, isMain: boolean) => unknown;
const loader = Module as unknown as { _load: Loader };
const original = loader._load;
loader._load = function load(request, parent, isMain) {
  return request === 'vscode' ? vscode : original.call(this, request, parent, isMain);
};
