// The status bar item: model name, a spinner while requests run, completions on/off, and an
// error state whose click opens the log.

export const SHOW_LOG_COMMAND = 'llamita.showLog';
export const TOGGLE_COMMAND = 'llamita.toggleCompletions';

export type ServerState = 'starting' | 'running' | 'stopped';

export interface StatusState {
  server: ServerState;
  /** Requests in flight (completions, reviews). */
  busy: number;
  completionsEnabled: boolean;
  /** The configured completion model; empty means the server's default. */
  model: string;
  /** Set when the server failed or a command failed; cleared by the next success. */
  error: string | undefined;
}

export interface StatusView {
  text: string;
  tooltip: string;
  command: string;
  error: boolean;
}

/** The item's look for a state (pure). An error wins over everything, then starting, busy, off. */
export function render(state: StatusState): StatusView {
  const name = state.model === '' ? 'llamita' : `llamita: ${state.model}`;
  const model = state.model === '' ? "the server's default model" : state.model;
  if (state.error !== undefined) {
    return {
      text: '$(error) llamita',
      tooltip: `llamita: ${state.error}\nClick to show the log.`,
      command: SHOW_LOG_COMMAND,
      error: true,
    };
  }
  if (state.server === 'stopped') {
    return {
      text: '$(debug-stop) llamita',
      tooltip: 'llamita: the language server is stopped. Click to show the log.',
      command: SHOW_LOG_COMMAND,
      error: false,
    };
  }
  if (state.server === 'starting') {
    return {
      text: '$(loading~spin) llamita',
      tooltip: 'llamita: starting the language server',
      command: SHOW_LOG_COMMAND,
      error: false,
    };
  }
  if (state.busy > 0) {
    return {
      text: `$(sync~spin) ${name}`,
      tooltip: `llamita: waiting for ${model} (${state.busy} request${state.busy === 1 ? '' : 's'})`,
      command: SHOW_LOG_COMMAND,
      error: false,
    };
  }
  if (!state.completionsEnabled) {
    return {
      text: `$(circle-slash) ${name}`,
      tooltip: 'llamita: inline completions are off. Click to turn them on.',
      command: TOGGLE_COMMAND,
      error: false,
    };
  }
  return {
    text: `$(sparkle) ${name}`,
    tooltip: `llamita: inline completions from ${model}. Click to turn them off.`,
    command: TOGGLE_COMMAND,
    error: false,
  };
}

/** The part of `vscode.StatusBarItem` the status bar writes. */
export interface StatusItemLike {
  text: string;
  tooltip: unknown;
  command: unknown;
  backgroundColor: unknown;
  show(): void;
  dispose(): void;
}

export class StatusBar {
  private state: StatusState = {
    server: 'starting',
    busy: 0,
    completionsEnabled: true,
    model: '',
    error: undefined,
  };

  /** `errorBackground` is a `ThemeColor('statusBarItem.errorBackground')` in VS Code. */
  constructor(
    private readonly item: StatusItemLike,
    private readonly errorBackground: unknown,
  ) {
    this.update();
    item.show();
  }

  get current(): Readonly<StatusState> {
    return this.state;
  }

  setServer(server: ServerState): void {
    this.set({ server, error: server === 'starting' ? undefined : this.state.error });
  }

  configure(model: string, completionsEnabled: boolean): void {
    this.set({ model, completionsEnabled });
  }

  setError(message: string): void {
    this.set({ error: message });
  }

  clearError(): void {
    if (this.state.error !== undefined) {
      this.set({ error: undefined });
    }
  }

  /** Shows the spinner until `work` settles; returns `work`'s result unchanged. */
  async track<T>(work: PromiseLike<T> | T): Promise<T> {
    this.set({ busy: this.state.busy + 1 });
    try {
      return await work;
    } finally {
      this.set({ busy: this.state.busy - 1 });
    }
  }

  dispose(): void {
    this.item.dispose();
  }

  private set(change: Partial<StatusState>): void {
    this.state = { ...this.state, ...change };
    this.update();
  }

  private update(): void {
    const view = render(this.state);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.command = view.command;
    this.item.backgroundColor = view.error ? this.errorBackground : undefined;
  }
}
