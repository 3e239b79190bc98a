/** `popdns health --config FILE`: placeholder until the health probe lands. */
export async function runHealth(_flags: { config: string }): Promise<void> {
  process.stderr.write('popdns health: not implemented yet [POPDNS_E_NOT_IMPLEMENTED]\n');
  process.exitCode = 2;
}
