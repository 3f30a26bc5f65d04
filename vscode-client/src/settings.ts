// The extension's settings (`llamita.*` in settings.json) and what the language server receives.
//
// Pure: imports only types from `vscode`, so scripts/e2e.mjs can build the very same
// initializationOptions from out/settings.js without VS Code.

import type { ConfigurationChangeEvent } from 'vscode';

export const SECTION = 'llamita';

/** The `llamita.*` settings as the extension uses them (keys relative to the section). */
export interface Settings {
  path: string;
  serverUrl: string;
  completionModel: string;
  reviewModel: string;
  prModel: string;
  reviewOnSave: boolean;
  debounceMs: number;
  completionsEnabled: boolean;
  /** Language id → completions on/off; `*` is the default for languages not listed. */
  languages: Record<string, boolean>;
  /** Repository context in completion prompts (imported definitions, similar snippets). */
  context: boolean;
  /** Its token budget (0: none) and the most of it that definitions may take (0..1). */
  snippetTokens: number;
  definitionShare: number;
}

/**
 * What `llamita lsp` receives as `initializationOptions`, under the `llamita` key of
 * `workspace/didChangeConfiguration`, and as the answer to `workspace/configuration` (names as in
 * lsp/settings.py). Optional keys are left out when empty so the server keeps its own default
 * (its default models, `LLAMITA_API_KEY`); an empty `serverUrl` means `OLLAMA_HOST`.
 */
export interface ServerSettings {
  serverUrl: string;
  apiKey?: string;
  completionModel?: string;
  reviewModel?: string;
  reviewOnSave: boolean;
  debounceMs: number;
  enable: boolean;
  languages: Record<string, boolean>;
  context: boolean;
  snippetTokens: number;
  definitionShare: number;
}

export const DEFAULTS: Readonly<Settings> = Object.freeze({
  path: '',
  serverUrl: '',
  completionModel: '',
  reviewModel: '',
  prModel: '',
  reviewOnSave: true,
  debounceMs: 150,
  completionsEnabled: true,
  languages: { '*': true, plaintext: false, markdown: false },
  context: true,
  snippetTokens: 384,
  definitionShare: 0.5,
});

/** Setting key (relative to `llamita.`) for each field, as contributed in package.json. */
export const KEYS: Readonly<Record<keyof Settings, string>> = Object.freeze({
  path: 'path',
  serverUrl: 'serverUrl',
  completionModel: 'completionModel',
  reviewModel: 'reviewModel',
  prModel: 'prModel',
  reviewOnSave: 'reviewOnSave',
  debounceMs: 'debounceMs',
  completionsEnabled: 'completions.enabled',
  languages: 'languages',
  context: 'context.enabled',
  snippetTokens: 'context.budget',
  definitionShare: 'context.definitionShare',
});

/** Settings whose change needs a new `llamita lsp` process; every other one is pushed live. */
export const RESTART_KEYS: readonly string[] = Object.freeze([`${SECTION}.${KEYS.path}`]);

/** Settings the extension itself consumes; changing them sends nothing to the server. */
const CLIENT_ONLY_KEYS: readonly string[] = [KEYS.prModel, 'trace.server'].map((k) => `${SECTION}.${k}`);

/** The subset of `WorkspaceConfiguration` that readSettings needs. */
export interface ConfigurationLike {
  get(key: string): unknown;
}

function str(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value.trim() : fallback;
}

function bool(value: unknown, fallback: boolean): boolean {
  return typeof value === 'boolean' ? value : fallback;
}

function int(value: unknown, fallback: number, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    return fallback;
  }
  return Math.min(max, Math.max(min, Math.round(value)));
}

function fraction(value: unknown, fallback: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    return fallback;
  }
  return Math.min(1, Math.max(0, value));
}

function switches(value: unknown, fallback: Readonly<Record<string, boolean>>): Record<string, boolean> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ...fallback };
  }
  const out: Record<string, boolean> = {};
  for (const [key, on] of Object.entries(value)) {
    if (typeof on === 'boolean' && key.trim() !== '') {
      out[key.trim()] = on;
    }
  }
  return out;
}

/** Reads `llamita.*` from a configuration section, falling back to DEFAULTS on missing or mistyped values. */
export function readSettings(config: ConfigurationLike): Settings {
  return {
    path: str(config.get(KEYS.path), DEFAULTS.path),
    serverUrl: str(config.get(KEYS.serverUrl), DEFAULTS.serverUrl),
    completionModel: str(config.get(KEYS.completionModel), DEFAULTS.completionModel),
    reviewModel: str(config.get(KEYS.reviewModel), DEFAULTS.reviewModel),
    prModel: str(config.get(KEYS.prModel), DEFAULTS.prModel),
    reviewOnSave: bool(config.get(KEYS.reviewOnSave), DEFAULTS.reviewOnSave),
    debounceMs: int(config.get(KEYS.debounceMs), DEFAULTS.debounceMs, 0, 5000),
    completionsEnabled: bool(config.get(KEYS.completionsEnabled), DEFAULTS.completionsEnabled),
    languages: switches(config.get(KEYS.languages), DEFAULTS.languages),
    context: bool(config.get(KEYS.context), DEFAULTS.context),
    snippetTokens: int(config.get(KEYS.snippetTokens), DEFAULTS.snippetTokens, 0, 8192),
    definitionShare: fraction(config.get(KEYS.definitionShare), DEFAULTS.definitionShare),
  };
}

/** The settings object the language server receives (initializationOptions). */
export function toServerSettings(settings: Settings, apiKey: string | undefined): ServerSettings {
  const languages = { ...settings.languages };
  delete languages['*']; // the server treats unlisted languages as on; the client gates `*: false`
  return {
    serverUrl: settings.serverUrl,
    ...(apiKey ? { apiKey } : {}),
    ...(settings.completionModel ? { completionModel: settings.completionModel } : {}),
    ...(settings.reviewModel ? { reviewModel: settings.reviewModel } : {}),
    reviewOnSave: settings.reviewOnSave,
    debounceMs: settings.debounceMs,
    enable: settings.completionsEnabled,
    languages,
    context: settings.context,
    snippetTokens: settings.snippetTokens,
    definitionShare: settings.definitionShare,
  };
}

/**
 * Keys the server received before but would not receive now. The server keeps a value it is not
 * sent, so clearing a model or the API key needs a restart to get its default back.
 */
export function droppedKeys(before: ServerSettings, after: ServerSettings): string[] {
  return Object.keys(before).filter((key) => !(key in after));
}

/** The `workspace/didChangeConfiguration` params for these settings. */
export function toDidChangeConfiguration(settings: ServerSettings): { settings: { [SECTION]: ServerSettings } } {
  return { settings: { [SECTION]: settings } };
}

type ChangeEvent = Pick<ConfigurationChangeEvent, 'affectsConfiguration'>;

/** What a configuration change asks of the extension. */
export type ChangeAction = 'restart' | 'push' | 'local' | 'none';

export function classifyChange(event: ChangeEvent): ChangeAction {
  if (RESTART_KEYS.some((key) => event.affectsConfiguration(key))) {
    return 'restart';
  }
  if (!event.affectsConfiguration(SECTION)) {
    return 'none';
  }
  const serverKeys = (Object.keys(KEYS) as (keyof Settings)[])
    .map((field) => `${SECTION}.${KEYS[field]}`)
    .filter((key) => !RESTART_KEYS.includes(key) && !CLIENT_ONLY_KEYS.includes(key));
  return serverKeys.some((key) => event.affectsConfiguration(key)) ? 'push' : 'local';
}

/** Whether inline completions are wanted for a language id: its own switch, else `*`, else on. */
export function isLanguageEnabled(settings: Pick<Settings, 'languages'>, languageId: string): boolean {
  return settings.languages[languageId] ?? settings.languages['*'] ?? true;
}
