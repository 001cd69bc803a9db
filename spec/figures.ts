/**
 * Figures a spec measured (rates, memory, counts) are for the bench, not for a passing run: a spec
 * prints them only when it fails, appended to the failing assertion's message.
 */
export function withFigures(figures: () => string, assertions: () => void): void {
  try {
    assertions();
  } catch (error) {
    if (error instanceof Error) error.message += `\n\nFigures: ${figures()}`;
    throw error;
  }
}
