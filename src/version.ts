/** banger's version; both processes and the CLI report it so mismatches are visible. */
export const VERSION = "0.1.0";
