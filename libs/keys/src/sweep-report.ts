/**
 * What one deletion or rotation sweep did. A sweep never throws: what it
 * could not do is listed in `failures`, so a sweep that broke is told apart
 * from one that had nothing to do.
 */
export interface SweepReport {
  /** Keys finished by this sweep: destroyed everywhere, or rotated. */
  done: string[];
  /** One line per thing left for the next sweep (key, version, appliance, error). */
  failures: string[];
}
