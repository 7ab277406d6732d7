/** Every lattice command, in the order `trellis --help` lists them. */
import { commands as actorCommands } from './actor-commands.ts';
import { commands as appsCommands } from './apps-commands.ts';
import { commands as canaryCommands } from './canary-commands.ts';
import type { Command } from './command.ts';
import { commands as controlCommands } from './control-commands.ts';
import { commands as dashboardCommands } from './dashboard-command.ts';
import { commands as providerCommands } from './provider-commands.ts';
import { commands as signingCommands } from './signing-commands.ts';
import { commands as weightsCommands } from './weights-commands.ts';
import { commands as observeCommands } from './observe-commands.ts';
import { commands as natsCommands } from './nats-commands.ts';

export const commands: Command[] = [...controlCommands, ...actorCommands, ...weightsCommands, ...providerCommands, ...appsCommands, ...canaryCommands, ...signingCommands, ...observeCommands, ...dashboardCommands, ...natsCommands];
