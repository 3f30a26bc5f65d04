// The `llamita lsp` process and its LanguageClient: start, stop, restart (debounced on setting
// changes), settings pushed as initializationOptions and workspace/didChangeConfiguration.

import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  NotificationType,
  RevealOutputChannelOn,
  State,
  type LanguageClientOptions,
  type ServerOptions,
} from 'vscode-languageclient/node';
import type { ConfigurationChangeEvent, LogOutputChannel } from 'vscode';

import type { Resolution } from './executable';
import { createMiddleware } from './middleware';
import {
  classifyChange,
  droppedKeys,
  toDidChangeConfiguration,
  toServerSettings,
  type ServerSettings,
  type Settings,
} from './settings';
import type { StatusBar } from './status';

export const CLIENT_ID = 'llamita';
export const CLIENT_NAME = 'llamita';
/** The server's command (workspace/executeCommand) that reviews one document, by URI. */
export const REVIEW_FILE_COMMAND = 'llamita.reviewFile';
export const RESTART_DELAY_MS = 500;

export type ClientLike = Pick<
  LanguageClient,
  'state' | 'start' | 'dispose' | 'sendNotification' | 'sendRequest' | 'onDidChangeState'
>;

export type ClientFactory = (serverOptions: ServerOptions, clientOptions: LanguageClientOptions) => ClientLike;

export const createLanguageClient: ClientFactory = (serverOptions, clientOptions) =>
  new LanguageClient(CLIENT_ID, CLIENT_NAME, serverOptions, clientOptions);

export interface ServerDeps {
  createClient: ClientFactory;
  settings(): Settings;
  apiKey(): PromiseLike<string | undefined>;
  folders(): string[];
  resolve(configured: string, folders: readonly string[]): Resolution;
  log: LogOutputChannel;
  status: StatusBar;
  offered(languageId: string, items: number): void;
  restartDelayMs?: number;
}

/** `<executable> lsp` over stdio, started in the first workspace folder. */
export function buildServerOptions(executable: string, cwd: string | undefined): ServerOptions {
  return { command: executable, args: ['lsp'], options: cwd === undefined ? {} : { cwd } };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class LlamitaServer {
  private client: ClientLike | undefined;
  private stateListener: { dispose(): unknown } | undefined;
  private current: ServerSettings;
  private queue: Promise<void> = Promise.resolve();
  private restartTimer: ReturnType<typeof setTimeout> | undefined;
  private stopping = false;

  constructor(private readonly deps: ServerDeps) {
    this.current = toServerSettings(deps.settings(), undefined);
  }

  /** The settings the server last received (also the answer to workspace/configuration). */
  get serverSettings(): ServerSettings {
    return this.current;
  }

  get running(): boolean {
    return this.client?.state === State.Running;
  }

  start(): Promise<void> {
    return this.enqueue(() => this.doStart());
  }

  stop(): Promise<void> {
    return this.enqueue(() => this.doStop());
  }

  restart(): Promise<void> {
    this.cancelScheduledRestart();
    return this.enqueue(async () => {
      await this.doStop();
      await this.doStart();
    });
  }

  /** Restarts after RESTART_DELAY_MS, so a burst of setting edits restarts the server once. */
  scheduleRestart(): void {
    this.cancelScheduledRestart();
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      void this.restart();
    }, this.deps.restartDelayMs ?? RESTART_DELAY_MS);
  }

  /**
   * Re-reads the settings and the API key and sends them with workspace/didChangeConfiguration,
   * or restarts the server when a value it holds was cleared (see droppedKeys).
   */
  pushSettings(): Promise<void> {
    return this.enqueue(async () => {
      const before = this.current;
      await this.refresh();
      if (this.client === undefined || !this.running) {
        return;
      }
      const dropped = droppedKeys(before, this.current);
      if (dropped.length > 0) {
        this.deps.log.info(`restarting llamita lsp: ${dropped.join(', ')} cleared, back to the server's default`);
        await this.doStop();
        await this.doStart();
        return;
      }
      await this.client.sendNotification(
        DidChangeConfigurationNotification.type,
        toDidChangeConfiguration(this.current),
      );
    });
  }

  onConfigurationChanged(event: Pick<ConfigurationChangeEvent, 'affectsConfiguration'>): Promise<void> {
    switch (classifyChange(event)) {
      case 'restart':
        this.scheduleRestart();
        return Promise.resolve();
      case 'push':
        return this.pushSettings();
      case 'local': {
        const settings = this.deps.settings();
        this.deps.status.configure(settings.completionModel, settings.completionsEnabled);
        return Promise.resolve();
      }
      case 'none':
        return Promise.resolve();
    }
  }

  /** Asks the server to review a document now; its findings arrive as diagnostics. */
  async reviewFile(uri: string): Promise<unknown> {
    const client = this.client;
    if (client === undefined || !this.running) {
      throw new Error('the language server is not running (see the log)');
    }
    return this.deps.status.track(
      client.sendRequest(ExecuteCommandRequest.type, { command: REVIEW_FILE_COMMAND, arguments: [uri] }),
    );
  }

  async dispose(): Promise<void> {
    this.cancelScheduledRestart();
    await this.stop();
  }

  /** The LanguageClientOptions for a start with these initializationOptions. */
  clientOptions(initializationOptions: ServerSettings): LanguageClientOptions {
    return {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      diagnosticCollectionName: CLIENT_ID,
      outputChannel: this.deps.log,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      initializationOptions,
      middleware: createMiddleware({
        settings: () => this.deps.settings(),
        serverSettings: () => this.current,
        track: (work) => this.deps.status.track(work),
        offered: (languageId, items) => this.deps.offered(languageId, items),
        notify: (method, params) => this.notify(method, params),
      }),
    };
  }

  /** A notification to the running server; a failure is logged, never thrown at the editor. */
  private notify(method: string, params: unknown): void {
    const client = this.client;
    if (client === undefined || !this.running) {
      return;
    }
    client
      .sendNotification(new NotificationType<unknown>(method), params)
      .catch((error: unknown) => this.deps.log.warn(`${method}: ${message(error)}`));
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const next = this.queue.then(task, task);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private cancelScheduledRestart(): void {
    if (this.restartTimer !== undefined) {
      clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
    }
  }

  private async refresh(): Promise<Settings> {
    const settings = this.deps.settings();
    this.current = toServerSettings(settings, await this.deps.apiKey());
    this.deps.status.configure(settings.completionModel, settings.completionsEnabled);
    return settings;
  }

  private async doStart(): Promise<void> {
    const settings = await this.refresh();
    this.deps.status.setServer('starting');
    const folders = this.deps.folders();
    const executable = this.deps.resolve(settings.path, folders);
    if (!executable.ok) {
      this.deps.log.error(executable.message);
      this.deps.status.setServer('stopped');
      this.deps.status.setError(executable.message);
      return;
    }
    this.deps.log.info(`starting ${executable.path} lsp (found via ${executable.source})`);
    const client = this.deps.createClient(
      buildServerOptions(executable.path, folders[0]),
      this.clientOptions(this.current),
    );
    this.client = client;
    this.stateListener = client.onDidChangeState(({ newState }) => this.onState(newState));
    try {
      await client.start();
      this.deps.status.setServer('running');
    } catch (error) {
      const text = `llamita lsp did not start: ${message(error)}`;
      this.deps.log.error(text);
      this.deps.status.setServer('stopped');
      this.deps.status.setError(text);
    }
  }

  private async doStop(): Promise<void> {
    const client = this.client;
    if (client === undefined) {
      return;
    }
    this.stopping = true;
    try {
      await client.dispose();
    } catch (error) {
      this.deps.log.warn(`stopping llamita lsp: ${message(error)}`);
    } finally {
      this.stateListener?.dispose();
      this.stateListener = undefined;
      this.client = undefined;
      this.stopping = false;
      this.deps.status.setServer('stopped');
    }
  }

  private onState(state: State): void {
    if (state === State.Running) {
      this.deps.status.setServer('running');
    } else if (state === State.Starting) {
      this.deps.status.setServer('starting');
    } else if (!this.stopping) {
      this.deps.status.setServer('stopped');
      this.deps.status.setError('the language server stopped (see the log)');
    }
  }
}
