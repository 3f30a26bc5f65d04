// vscode-languageclient middleware: the client-side part of completions (on/off and per-language
// gating, busy spinner, acceptance counting) and the settings answer to `workspace/configuration`.

import type { Command } from 'vscode';
import type { Middleware } from 'vscode-languageclient';

import { isLanguageEnabled, SECTION, type ServerSettings, type Settings } from './settings';

/** Registered by the extension; wraps the server's own item command so acceptances are counted. */
export const ACCEPT_COMMAND = 'llamita.completionAccepted';

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
  return {
    provideInlineCompletionItems: async (document, position, context, token, next) => {
      const settings = deps.settings();
      if (!settings.completionsEnabled || !isLanguageEnabled(settings, document.languageId)) {
        return undefined;
      }
      const result = await deps.track(next(document, position, context, token));
      const items = result === undefined || result === null ? [] : Array.isArray(result) ? result : result.items;
      for (const item of items) {
        item.command = acceptanceCommand(document.languageId, item.command);
      }
      deps.offered(document.languageId, items.length);
      return result;
    },
    // The server's textDocument/completion is a fallback for editors without inline completion;
    // VS Code shows the same suggestion as ghost text, so the popup copy is not requested.
    provideCompletionItem: () => undefined,
    executeCommand: (command, args, next) => deps.track(next(command, args)),
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
