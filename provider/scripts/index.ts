// The host-side shell programs, kept as .sh files so they can be read,
// linted (shellcheck) and run locally like any script. They take every value
// as a positional parameter and run as `sh -c "$script" sh args…`.
// `npm run build` copies the .sh files next to this module in dist, so the
// same lookup works from source (tsx) and from the built package.
import { readFileSync } from "fs";
import { join } from "path";

/** The directory holding the .sh files (for tests that lint or run them). */
export const SCRIPTS_DIR = __dirname;

/** One script's text; read once, at module load of its user. */
export function loadScript(name: string): string {
  return readFileSync(join(SCRIPTS_DIR, `${name}.sh`), "utf8");
}
