/** The whole `trellis` CLI: the lattice commands plus the participants this package can run. */
import { latticeCommands, main as dispatch, type Command } from '../../lattice/cli/index.ts';
import { commands as participantCommands } from './participants.ts';
import { commands as upCommands } from './up.ts';

export const commands: Command[] = [...upCommands, ...participantCommands, ...latticeCommands];

/** Run the CLI; returns the process exit code. */
export function main(argv: string[]): Promise<number> {
  return dispatch(argv, commands);
}
