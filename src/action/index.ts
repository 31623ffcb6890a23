import { run } from './main.js';

await run();
// The step ends when its work does: a download @actions/cache gave up on
// leaves its segment timer armed (up to 10 minutes), which would otherwise
// keep the step running after the build. The exit code is core's.
process.exit();
