/**
 * The actors folder's public entry: the trellis:actor WIT package and the build pipeline that
 * turns JS/TS or C sources into actor components.
 */
export {
  buildActor,
  buildExampleActors,
  exampleActorNames,
  type BuildActorOptions,
  type BuildExamplesOptions,
  type BuildResult,
  type ExampleActorName,
} from './build/index.ts';
