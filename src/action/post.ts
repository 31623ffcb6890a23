import * as core from '@actions/core';
import { SystemHost } from '../host/system-host.js';
import { describeResource, undoResource } from '../pipeline/resources.js';
import { ActionReporter } from './action-reporter.js';
import { readPendingResources } from './pending-resources.js';

/**
 * Undo what the main step registered and did not get to undo — it was
 * cancelled or killed. Runs whatever the outcome (post-if: always()), newest
 * first; every undo is idempotent, and a failure only warns.
 */
async function cleanUpAfterBuild(): Promise<void> {
  const { resources, unreadable } = readPendingResources();
  for (const entry of unreadable)
    core.warning(
      `The saved state names something the cleanup does not understand: ${entry}; check the runner for leftovers.`,
    );
  if (resources.length === 0) {
    core.info('Nothing left to clean up.');
    return;
  }
  const reporter = new ActionReporter();
  const host = new SystemHost(reporter).uninterruptible();
  await reporter.group(`Clean up after the interrupted build (${resources.length} left)`, async () => {
    for (const resource of [...resources].reverse()) {
      try {
        await undoResource(host, resource);
        reporter.info(`Removed ${describeResource(resource)} (or it was already gone).`);
      } catch (error) {
        core.warning(
          `Could not remove ${describeResource(resource)}: ${error instanceof Error ? error.message : String(error)}. Remove it by hand.`,
        );
      }
    }
  });
}

/** The post step: never fails the job, only warns. */
export async function run(): Promise<void> {
  try {
    await cleanUpAfterBuild();
  } catch (error) {
    core.warning(`Cleanup after the build failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}
