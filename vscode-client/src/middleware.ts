// vscode-languageclient middleware: the client-side part of completions (on/off and per-language
// gating, busy spinner, acceptance counting) and the settings answer to `workspace/configuration`.
//
// Acceptance counters for the team's /metrics: the server's item command (SERVER_ACCEPT_COMMAND)
// runs on a full accept through the wrapper below, and `textDocument/didShowCompletion` is sent
// when VS Code receives an item to show. VS Code's stable API has no "shown" or "partially
// accepted" event (handleDidShowCompletionItem / handleDidPartiallyAcceptCompletionItem are the
// proposed inlineCompletionsAdditions API, and vscode-languageclient 10.1 does not expose them),
// so "shown" means "handed to VS Code for display" and partial accepts are not reported.

import type { Command, InlineCompletionItem } from 'vscode';
import type { Middleware } from 'vscode-languageclient';

import { isLanguageEnabled, SECTION, type ServerSettings, type Settings } from './settings';

/** Registered by the extension; wraps the server's own item command so acceptances are counted. */
export const ACCEPT_COMMAND = 'llamita.completionAccepted';

/** The language server's own item command: counts a full accept (model, language, length). */
export const SERVER_ACCEPT_COMMAND = 'llamita.acceptCompletion';
/** Copilot's LSP name for "this inline completion item was shown"; params `{item}`. */
export const DID_SHOW_COMPLETION = 'textDocument/didShowCompletion';

/** The LSP item the server gets back in didShowCompletion: its text and its command (labels). */
export interface ShownItem {
  insertText: string;
  command: Command | undefined;
}

/** The argument ACCEPT_COMMAND receives: the document's language and the server's command, if any. */
export interface Acceptance {
  languageId: string;
  command: Command | undefined;
}

export interface MiddlewareDeps {
  settings(): Settings;
  serverSettings(): ServerSettings;
  track<T>(work: PromiseLike<T> | T): Promise<T>;
  offered(languageId: string, items: number): void;
  /** Sends a notification to the language server (dropped when it is not running). */
  notify(method: string, params: unknown): void;
}

function insertText(item: InlineCompletionItem): string {
  return typeof item.insertText === 'string' ? item.insertText : item.insertText.value;
}

/** didShowCompletion for the item VS Code displays, once per document and text (typing on re-asks). */
function shownReporter(notify: (method: string, params: unknown) => void) {
  const last = new Map<string, string>();
  return (uri: string, item: InlineCompletionItem | undefined): void => {
    if (item === undefined) {
      return;
    }
    const text = insertText(item);
    if (last.get(uri) === text) {
      return;
    }
    last.set(uri, text);
    const shown: ShownItem = { insertText: text, command: item.command };
    notify(DID_SHOW_COMPLETION, { item: shown });
  };
}

export function acceptanceCommand(languageId: string, command: Command | undefined): Command {
  const acceptance: Acceptance = { languageId, command };
  return { title: 'llamita: completion accepted', command: ACCEPT_COMMAND, arguments: [acceptance] };
}

/** The value for one `workspace/configuration` item, or undefined when the item is not ours. */
function ownConfiguration(section: string | undefined, settings: ServerSettings): { value: unknown } | undefined {
  if (section === SECTION) {
    return { value: settings };
  }
  if (section !== undefined && section.startsWith(`${SECTION}.`)) {
    const key = section.slice(SECTION.length + 1) as keyof ServerSettings;
    return { value: key in settings ? settings[key] : null };
  }
  return undefined;
}

export function createMiddleware(deps: MiddlewareDeps): Middleware {
  const shown = shownReporter((method, params) => deps.notify(method, params));
  return {
    provideInlineCompletionItems: async (document, position, context, token, next) => {
      const settings = deps.settings();
      if (!settings.completionsEnabled || !isLanguageEnabled(settings, document.languageId)) {
        return undefined;
      }
      const result = await deps.track(next(document, position, context, token));
      const items = result === undefined || result === null ? [] : Array.isArray(result) ? result : result.items;
      shown(document.uri.toString(), items[0]);
      for (const item of items) {
        item.command = acceptanceCommand(document.languageId, item.command);
      }
      deps.offered(document.languageId, items.length);
      return result;
    },
    // The server's textDocument/completion is a fallback for editors without inline completion;
    // VS Code shows the same suggestion as ghost text, so the popup copy is not requested.
    provideCompletionItem: () => undefined,
    // An accept is not work the user waits for: no spinner for it.
    executeCommand: (command, args, next) =>
      command === SERVER_ACCEPT_COMMAND ? next(command, args) : deps.track(next(command, args)),
    workspace: {
      configuration: async (params, token, next) => {
        const settings = deps.serverSettings();
        const own = params.items.map((item) => ownConfiguration(item.section, settings));
        if (own.every((o) => o !== undefined)) {
          return own.map((o) => o?.value);
        }
        const answered = await next(params, token);
        if (!Array.isArray(answered)) {
          return answered;
        }
        return answered.map((value: unknown, i) => {
          const mine = own[i];
          return mine === undefined ? value : mine.value;
        });
      },
    },
  };
}
