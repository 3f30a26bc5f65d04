// The command handlers behind the palette entries (and the internal acceptance command).
// Everything they touch comes in through CommandDeps, so tests drive them with fakes.

import * as path from 'node:path';

import type { Resolution } from './executable';
import { ACCEPT_COMMAND, type Acceptance } from './middleware';
import { describePr, PrError, type RunProcess } from './pr';
import { KEYS, type Settings } from './settings';
import type { LlamitaServer } from './server';
import type { StatusBar } from './status';

export const COMMANDS = {
  reviewCurrentFile: 'llamita.reviewCurrentFile',
  describePR: 'llamita.describePR',
  toggleCompletions: 'llamita.toggleCompletions',
  setApiKey: 'llamita.setApiKey',
  showLog: 'llamita.showLog',
  restart: 'llamita.restart',
} as const;

/** Where the API key lives in VS Code's SecretStorage (never in settings.json). */
export const API_KEY_SECRET = 'llamita.apiKey';

export interface ActiveDocument {
  uri: string;
  fileName: string;
  /** The workspace folder holding the document, if any. */
  folder: string | undefined;
}

/** The editor UI the handlers use (implemented over the vscode API in vscodeapi.ts). */
export interface Ui {
  activeDocument(): ActiveDocument | undefined;
  folders(): string[];
  askSecret(prompt: string): PromiseLike<string | undefined>;
  info(message: string): void;
  /** Shows an error with a "Show log" action. */
  error(message: string): void;
  openMarkdown(content: string): PromiseLike<void>;
  /** Runs `task` under a cancellable progress notification; cancelling aborts the signal. */
  withProgress<T>(title: string, task: (signal: AbortSignal) => Promise<T>): PromiseLike<T>;
  showLog(): void;
  executeCommand(command: string, ...args: unknown[]): PromiseLike<unknown>;
}

export interface SecretsLike {
  get(key: string): PromiseLike<string | undefined>;
  store(key: string, value: string): PromiseLike<void>;
  delete(key: string): PromiseLike<void>;
}

export interface LogLike {
  info(message: string): void;
  error(message: string): void;
}

export interface CommandDeps {
  ui: Ui;
  server: Pick<LlamitaServer, 'restart' | 'reviewFile'>;
  settings(): Settings;
  /** Writes a `llamita.*` setting (user scope). */
  updateSetting(key: string, value: unknown): PromiseLike<void>;
  secrets: SecretsLike;
  resolve(configured: string, folders: readonly string[]): Resolution;
  run: RunProcess;
  env: Readonly<Record<string, string | undefined>>;
  log: LogLike;
  status: Pick<StatusBar, 'setError' | 'clearError' | 'track'>;
  accepted(languageId: string): void;
}

export type Handler = (...args: unknown[]) => Promise<void>;

function isAbort(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}

/** `llamita.reviewFile` answers `{uri, diagnostics: <count>}`. */
function findingCount(result: unknown): number | undefined {
  if (typeof result === 'object' && result !== null && 'diagnostics' in result) {
    const count = (result as { diagnostics: unknown }).diagnostics;
    return typeof count === 'number' ? count : undefined;
  }
  return undefined;
}

export function commandHandlers(deps: CommandDeps): Record<string, Handler> {
  const fail = (what: string, error: unknown): void => {
    const text = `${what}: ${error instanceof Error ? error.message : String(error)}`;
    deps.log.error(text);
    if (error instanceof PrError && error.stderr.trim() !== '') {
      deps.log.error(error.stderr.trimEnd());
    }
    deps.status.setError(text);
    deps.ui.error(text);
  };

  const reviewCurrentFile: Handler = async () => {
    const document = deps.ui.activeDocument();
    if (document === undefined) {
      deps.ui.info('llamita: open a file to review it.');
      return;
    }
    const name = path.basename(document.fileName);
    try {
      const result = await deps.ui.withProgress(`llamita: reviewing ${name}`, () =>
        deps.server.reviewFile(document.uri),
      );
      deps.status.clearError();
      const count = findingCount(result);
      deps.log.info(`reviewed ${document.uri}: ${count ?? 'unknown number of'} finding(s)`);
      if (count !== undefined) {
        deps.ui.info(
          `llamita: ${count === 0 ? 'no findings' : `${count} finding${count === 1 ? '' : 's'}`} in ${name}.`,
        );
      }
    } catch (error) {
      fail('review failed', error);
    }
  };

  const describePR: Handler = async () => {
    const folders = deps.ui.folders();
    const cwd = deps.ui.activeDocument()?.folder ?? folders[0];
    if (cwd === undefined) {
      deps.ui.error('llamita: open a folder inside a git repository to describe its branch.');
      return;
    }
    const settings = deps.settings();
    const executable = deps.resolve(settings.path, folders);
    if (!executable.ok) {
      fail('PR description failed', new Error(executable.message));
      return;
    }
    try {
      const apiKey = await deps.secrets.get(API_KEY_SECRET);
      deps.log.info(`running ${executable.path} pr in ${cwd}`);
      const markdown = await deps.ui.withProgress('llamita: generating the PR description', (signal) =>
        deps.status.track(
          describePr(deps.run, { executable: executable.path, cwd, settings, apiKey, env: deps.env, signal }),
        ),
      );
      await deps.ui.openMarkdown(markdown);
      deps.status.clearError();
    } catch (error) {
      if (isAbort(error)) {
        deps.log.info('PR description cancelled');
        return;
      }
      fail('PR description failed', error);
    }
  };

  const toggleCompletions: Handler = async () => {
    const enabled = !deps.settings().completionsEnabled;
    await deps.updateSetting(KEYS.completionsEnabled, enabled);
    deps.log.info(`inline completions ${enabled ? 'on' : 'off'}`);
  };

  const setApiKey: Handler = async () => {
    const value = await deps.ui.askSecret(
      'API key for the llamita server (sent as "Authorization: Bearer"); leave empty to remove the stored key',
    );
    if (value === undefined) {
      return;
    }
    if (value.trim() === '') {
      await deps.secrets.delete(API_KEY_SECRET);
      deps.ui.info('llamita: API key removed.');
    } else {
      await deps.secrets.store(API_KEY_SECRET, value.trim());
      deps.ui.info('llamita: API key saved in VS Code secret storage.');
    }
  };

  const accepted: Handler = async (...args) => {
    const acceptance = args[0] as Acceptance | undefined;
    if (acceptance === undefined) {
      return;
    }
    deps.accepted(acceptance.languageId);
    if (acceptance.command !== undefined) {
      await deps.ui.executeCommand(acceptance.command.command, ...(acceptance.command.arguments ?? []));
    }
  };

  return {
    [COMMANDS.reviewCurrentFile]: reviewCurrentFile,
    [COMMANDS.describePR]: describePR,
    [COMMANDS.toggleCompletions]: toggleCompletions,
    [COMMANDS.setApiKey]: setApiKey,
    [COMMANDS.showLog]: async () => deps.ui.showLog(),
    [COMMANDS.restart]: () => deps.server.restart(),
    [ACCEPT_COMMAND]: accepted,
  };
}
