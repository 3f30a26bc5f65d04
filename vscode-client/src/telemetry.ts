// Local acceptance telemetry: how many inline completions were offered and accepted, per
// language, written to the llamita output channel. (The counters for the server's /metrics are
// the language server's: see middleware.ts.)

export interface Counts {
  offered: number;
  accepted: number;
}

export interface LineLog {
  info(message: string): void;
}

export class AcceptanceCounter {
  private readonly byLanguage = new Map<string, Counts>();

  constructor(private readonly log: LineLog) {}

  offered(languageId: string, items: number): void {
    if (items > 0) {
      this.entry(languageId).offered += items;
    }
  }

  accepted(languageId: string): void {
    this.entry(languageId).accepted += 1;
    this.log.info(`telemetry (local only): ${this.summary()}`);
  }

  totals(): Counts {
    let offered = 0;
    let accepted = 0;
    for (const counts of this.byLanguage.values()) {
      offered += counts.offered;
      accepted += counts.accepted;
    }
    return { offered, accepted };
  }

  /** e.g. `accepted 3 of 17 offered completions (18%); python 2/10, go 1/7`. */
  summary(): string {
    const { offered, accepted } = this.totals();
    const rate = offered === 0 ? 0 : Math.round((100 * accepted) / offered);
    const languages = [...this.byLanguage.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([id, c]) => `${id} ${c.accepted}/${c.offered}`)
      .join(', ');
    return `accepted ${accepted} of ${offered} offered completions (${rate}%)${languages ? `; ${languages}` : ''}`;
  }

  private entry(languageId: string): Counts {
    let counts = this.byLanguage.get(languageId);
    if (counts === undefined) {
      counts = { offered: 0, accepted: 0 };
      this.byLanguage.set(languageId, counts);
    }
    return counts;
  }
}
