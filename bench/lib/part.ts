/** The shape of one bench part: bench/run.ts runs parts alone or all together and prints their figures as one table. */
import type { Figure, Floor } from './report.ts';

export interface PartContext {
  /** The floor measured at the start of this run (absent while the floor itself is measured). */
  floor: Floor | undefined;
  /** A tiny workload that only proves the part runs (the smoke test uses it). */
  quick: boolean;
  /** Rounds for parts that alternate systems (peers); at least 3 unless quick. */
  rounds: number;
}

export interface Part {
  name: string;
  /** One line: what it measures. */
  about: string;
  run(ctx: PartContext): Promise<Figure[]>;
}
