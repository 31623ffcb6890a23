import { SystemHost } from '../host/system-host.js';
import { describeResource } from '../context/undo-list.js';
import { undoResource } from '../pipeline/resources.js';
import { ActionReporter } from './action-reporter.js';
import { readPendingResources } from './pending-resources.js';

/**
 * Undo what the main step registered and did not get to undo — it was
 * cancelled or killed. Runs whatever the outcome (post-if: always()), newest
 * first; every undo is idempotent, and a failure only warns.
 */
async function cleanUpAfterBuild(reporter: ActionReporter): Promise<void> {
  const { resources, unreadable } = readPendingResources();
  for (const entry of unreadable)
    reporter.warning(
      `The saved state names something the cleanup does not understand: ${entry}; check the runner for leftovers.`,
    );
  if (resources.length === 0) {
    reporter.info('Nothing left to clean up.');
    return;
  }
  const host = new SystemHost(reporter).uninterruptible();
  await reporter.group(`Clean up after the interrupted build (${resources.length} left)`, async () => {
    for (const resource of [...resources].reverse()) {
      try {
        await undoResource(host, resource);
        reporter.info(`Removed ${describeResource(resource)} (or it was already gone).`);
      } catch (error) {
        reporter.warning(
          `Could not remove ${describeResource(resource)}: ${error instanceof Error ? error.message : String(error)}. Remove it by hand.`,
        );
      }
    }
  });
}

/** The post step: never fails the job, only warns. */
export async function run(): Promise<void> {
  const reporter = new ActionReporter();
  try {
    await cleanUpAfterBuild(reporter);
  } catch (error) {
    reporter.warning(`Cleanup after the build failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}
