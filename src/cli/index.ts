#!/usr/bin/env node
import { quietOnBrokenPipe } from './broken-pipe.js';
import { main } from './main.js';

quietOnBrokenPipe();
process.exitCode = await main();
