#!/usr/bin/env node
import { createRequire as __WEBPACK_EXTERNAL_createRequire } from "module";
/******/ var __webpack_modules__ = ({

/***/ 421:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:child_process");

/***/ }),

/***/ 474:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:events");

/***/ }),

/***/ 24:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:fs");

/***/ }),

/***/ 760:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:path");

/***/ }),

/***/ 327:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:process");

/***/ }),

/***/ 909:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const { Argument } = __nccwpck_require__(154);
const { Command } = __nccwpck_require__(348);
const { CommanderError, InvalidArgumentError } = __nccwpck_require__(135);
const { Help } = __nccwpck_require__(754);
const { Option } = __nccwpck_require__(240);

exports.DM = new Command();

exports.gu = (name) => new Command(name);
exports.Ww = (flags, description) => new Option(flags, description);
exports.er = (name, description) => new Argument(name, description);

/**
 * Expose classes
 */

exports.uB = Command;
exports.c$ = Option;
exports.ef = Argument;
exports._V = Help;

exports.b7 = CommanderError;
exports.Di = InvalidArgumentError;
exports.a2 = InvalidArgumentError; // Deprecated


/***/ }),

/***/ 154:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const { InvalidArgumentError } = __nccwpck_require__(135);

class Argument {
  /**
   * Initialize a new command argument with the given name and description.
   * The default is that the argument is required, and you can explicitly
   * indicate this with <> around the name. Put [] around the name for an optional argument.
   *
   * @param {string} name
   * @param {string} [description]
   */

  constructor(name, description) {
    this.description = description || '';
    this.variadic = false;
    this.parseArg = undefined;
    this.defaultValue = undefined;
    this.defaultValueDescription = undefined;
    this.argChoices = undefined;

    switch (name[0]) {
      case '<': // e.g. <required>
        this.required = true;
        this._name = name.slice(1, -1);
        break;
      case '[': // e.g. [optional]
        this.required = false;
        this._name = name.slice(1, -1);
        break;
      default:
        this.required = true;
        this._name = name;
        break;
    }

    if (this._name.endsWith('...')) {
      this.variadic = true;
      this._name = this._name.slice(0, -3);
    }
  }

  /**
   * Return argument name.
   *
   * @return {string}
   */

  name() {
    return this._name;
  }

  /**
   * @package
   */

  _collectValue(value, previous) {
    if (previous === this.defaultValue || !Array.isArray(previous)) {
      return [value];
    }

    previous.push(value);
    return previous;
  }

  /**
   * Set the default value, and optionally supply the description to be displayed in the help.
   *
   * @param {*} value
   * @param {string} [description]
   * @return {Argument}
   */

  default(value, description) {
    this.defaultValue = value;
    this.defaultValueDescription = description;
    return this;
  }

  /**
   * Set the custom handler for processing CLI command arguments into argument values.
   *
   * @param {Function} [fn]
   * @return {Argument}
   */

  argParser(fn) {
    this.parseArg = fn;
    return this;
  }

  /**
   * Only allow argument value to be one of choices.
   *
   * @param {string[]} values
   * @return {Argument}
   */

  choices(values) {
    this.argChoices = values.slice();
    this.parseArg = (arg, previous) => {
      if (!this.argChoices.includes(arg)) {
        throw new InvalidArgumentError(
          `Allowed choices are ${this.argChoices.join(', ')}.`,
        );
      }
      if (this.variadic) {
        return this._collectValue(arg, previous);
      }
      return arg;
    };
    return this;
  }

  /**
   * Make argument required.
   *
   * @returns {Argument}
   */
  argRequired() {
    this.required = true;
    return this;
  }

  /**
   * Make argument optional.
   *
   * @returns {Argument}
   */
  argOptional() {
    this.required = false;
    return this;
  }
}

/**
 * Takes an argument and returns its human readable equivalent for help usage.
 *
 * @param {Argument} arg
 * @return {string}
 * @private
 */

function humanReadableArgName(arg) {
  const nameOutput = arg.name() + (arg.variadic === true ? '...' : '');

  return arg.required ? '<' + nameOutput + '>' : '[' + nameOutput + ']';
}

exports.Argument = Argument;
exports.humanReadableArgName = humanReadableArgName;


/***/ }),

/***/ 348:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const EventEmitter = (__nccwpck_require__(474).EventEmitter);
const childProcess = __nccwpck_require__(421);
const path = __nccwpck_require__(760);
const fs = __nccwpck_require__(24);
const process = __nccwpck_require__(327);

const { Argument, humanReadableArgName } = __nccwpck_require__(154);
const { CommanderError } = __nccwpck_require__(135);
const { Help, stripColor } = __nccwpck_require__(754);
const { Option, DualOptions } = __nccwpck_require__(240);
const { suggestSimilar } = __nccwpck_require__(30);

class Command extends EventEmitter {
  /**
   * Initialize a new `Command`.
   *
   * @param {string} [name]
   */

  constructor(name) {
    super();
    /** @type {Command[]} */
    this.commands = [];
    /** @type {Option[]} */
    this.options = [];
    this.parent = null;
    this._allowUnknownOption = false;
    this._allowExcessArguments = false;
    /** @type {Argument[]} */
    this.registeredArguments = [];
    this._args = this.registeredArguments; // deprecated old name
    /** @type {string[]} */
    this.args = []; // cli args with options removed
    this.rawArgs = [];
    this.processedArgs = []; // like .args but after custom processing and collecting variadic
    this._scriptPath = null;
    this._name = name || '';
    this._optionValues = {};
    this._optionValueSources = {}; // default, env, cli etc
    this._storeOptionsAsProperties = false;
    this._actionHandler = null;
    this._executableHandler = false;
    this._executableFile = null; // custom name for executable
    this._executableDir = null; // custom search directory for subcommands
    this._defaultCommandName = null;
    this._exitCallback = null;
    this._aliases = [];
    this._combineFlagAndOptionalValue = true;
    this._description = '';
    this._summary = '';
    this._argsDescription = undefined; // legacy
    this._enablePositionalOptions = false;
    this._passThroughOptions = false;
    this._lifeCycleHooks = {}; // a hash of arrays
    /** @type {(boolean | string)} */
    this._showHelpAfterError = false;
    this._showSuggestionAfterError = true;
    this._savedState = null; // used in save/restoreStateBeforeParse

    // see configureOutput() for docs
    this._outputConfiguration = {
      writeOut: (str) => process.stdout.write(str),
      writeErr: (str) => process.stderr.write(str),
      outputError: (str, write) => write(str),
      getOutHelpWidth: () =>
        process.stdout.isTTY ? process.stdout.columns : undefined,
      getErrHelpWidth: () =>
        process.stderr.isTTY ? process.stderr.columns : undefined,
      getOutHasColors: () =>
        useColor() ?? (process.stdout.isTTY && process.stdout.hasColors?.()),
      getErrHasColors: () =>
        useColor() ?? (process.stderr.isTTY && process.stderr.hasColors?.()),
      stripColor: (str) => stripColor(str),
    };

    this._hidden = false;
    /** @type {(Option | null | undefined)} */
    this._helpOption = undefined; // Lazy created on demand. May be null if help option is disabled.
    this._addImplicitHelpCommand = undefined; // undecided whether true or false yet, not inherited
    /** @type {Command} */
    this._helpCommand = undefined; // lazy initialised, inherited
    this._helpConfiguration = {};
    /** @type {string | undefined} */
    this._helpGroupHeading = undefined; // soft initialised when added to parent
    /** @type {string | undefined} */
    this._defaultCommandGroup = undefined;
    /** @type {string | undefined} */
    this._defaultOptionGroup = undefined;
  }

  /**
   * Copy settings that are useful to have in common across root command and subcommands.
   *
   * (Used internally when adding a command using `.command()` so subcommands inherit parent settings.)
   *
   * @param {Command} sourceCommand
   * @return {Command} `this` command for chaining
   */
  copyInheritedSettings(sourceCommand) {
    this._outputConfiguration = sourceCommand._outputConfiguration;
    this._helpOption = sourceCommand._helpOption;
    this._helpCommand = sourceCommand._helpCommand;
    this._helpConfiguration = sourceCommand._helpConfiguration;
    this._exitCallback = sourceCommand._exitCallback;
    this._storeOptionsAsProperties = sourceCommand._storeOptionsAsProperties;
    this._combineFlagAndOptionalValue =
      sourceCommand._combineFlagAndOptionalValue;
    this._allowExcessArguments = sourceCommand._allowExcessArguments;
    this._enablePositionalOptions = sourceCommand._enablePositionalOptions;
    this._showHelpAfterError = sourceCommand._showHelpAfterError;
    this._showSuggestionAfterError = sourceCommand._showSuggestionAfterError;

    return this;
  }

  /**
   * @returns {Command[]}
   * @private
   */

  _getCommandAndAncestors() {
    const result = [];
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    for (let command = this; command; command = command.parent) {
      result.push(command);
    }
    return result;
  }

  /**
   * Define a command.
   *
   * There are two styles of command: pay attention to where to put the description.
   *
   * @example
   * // Command implemented using action handler (description is supplied separately to `.command`)
   * program
   *   .command('clone <source> [destination]')
   *   .description('clone a repository into a newly created directory')
   *   .action((source, destination) => {
   *     console.log('clone command called');
   *   });
   *
   * // Command implemented using separate executable file (description is second parameter to `.command`)
   * program
   *   .command('start <service>', 'start named service')
   *   .command('stop [service]', 'stop named service, or all if no name supplied');
   *
   * @param {string} nameAndArgs - command name and arguments, args are `<required>` or `[optional]` and last may also be `variadic...`
   * @param {(object | string)} [actionOptsOrExecDesc] - configuration options (for action), or description (for executable)
   * @param {object} [execOpts] - configuration options (for executable)
   * @return {Command} returns new command for action handler, or `this` for executable command
   */

  command(nameAndArgs, actionOptsOrExecDesc, execOpts) {
    let desc = actionOptsOrExecDesc;
    let opts = execOpts;
    if (typeof desc === 'object' && desc !== null) {
      opts = desc;
      desc = null;
    }
    opts = opts || {};
    const [, name, args] = nameAndArgs.match(/([^ ]+) *(.*)/);

    const cmd = this.createCommand(name);
    if (desc) {
      cmd.description(desc);
      cmd._executableHandler = true;
    }
    if (opts.isDefault) this._defaultCommandName = cmd._name;
    cmd._hidden = !!(opts.noHelp || opts.hidden); // noHelp is deprecated old name for hidden
    cmd._executableFile = opts.executableFile || null; // Custom name for executable file, set missing to null to match constructor
    if (args) cmd.arguments(args);
    this._registerCommand(cmd);
    cmd.parent = this;
    cmd.copyInheritedSettings(this);

    if (desc) return this;
    return cmd;
  }

  /**
   * Factory routine to create a new unattached command.
   *
   * See .command() for creating an attached subcommand, which uses this routine to
   * create the command. You can override createCommand to customise subcommands.
   *
   * @param {string} [name]
   * @return {Command} new command
   */

  createCommand(name) {
    return new Command(name);
  }

  /**
   * You can customise the help with a subclass of Help by overriding createHelp,
   * or by overriding Help properties using configureHelp().
   *
   * @return {Help}
   */

  createHelp() {
    return Object.assign(new Help(), this.configureHelp());
  }

  /**
   * You can customise the help by overriding Help properties using configureHelp(),
   * or with a subclass of Help by overriding createHelp().
   *
   * @param {object} [configuration] - configuration options
   * @return {(Command | object)} `this` command for chaining, or stored configuration
   */

  configureHelp(configuration) {
    if (configuration === undefined) return this._helpConfiguration;

    this._helpConfiguration = configuration;
    return this;
  }

  /**
   * The default output goes to stdout and stderr. You can customise this for special
   * applications. You can also customise the display of errors by overriding outputError.
   *
   * The configuration properties are all functions:
   *
   *     // change how output being written, defaults to stdout and stderr
   *     writeOut(str)
   *     writeErr(str)
   *     // change how output being written for errors, defaults to writeErr
   *     outputError(str, write) // used for displaying errors and not used for displaying help
   *     // specify width for wrapping help
   *     getOutHelpWidth()
   *     getErrHelpWidth()
   *     // color support, currently only used with Help
   *     getOutHasColors()
   *     getErrHasColors()
   *     stripColor() // used to remove ANSI escape codes if output does not have colors
   *
   * @param {object} [configuration] - configuration options
   * @return {(Command | object)} `this` command for chaining, or stored configuration
   */

  configureOutput(configuration) {
    if (configuration === undefined) return this._outputConfiguration;

    this._outputConfiguration = {
      ...this._outputConfiguration,
      ...configuration,
    };
    return this;
  }

  /**
   * Display the help or a custom message after an error occurs.
   *
   * @param {(boolean|string)} [displayHelp]
   * @return {Command} `this` command for chaining
   */
  showHelpAfterError(displayHelp = true) {
    if (typeof displayHelp !== 'string') displayHelp = !!displayHelp;
    this._showHelpAfterError = displayHelp;
    return this;
  }

  /**
   * Display suggestion of similar commands for unknown commands, or options for unknown options.
   *
   * @param {boolean} [displaySuggestion]
   * @return {Command} `this` command for chaining
   */
  showSuggestionAfterError(displaySuggestion = true) {
    this._showSuggestionAfterError = !!displaySuggestion;
    return this;
  }

  /**
   * Add a prepared subcommand.
   *
   * See .command() for creating an attached subcommand which inherits settings from its parent.
   *
   * @param {Command} cmd - new subcommand
   * @param {object} [opts] - configuration options
   * @return {Command} `this` command for chaining
   */

  addCommand(cmd, opts) {
    if (!cmd._name) {
      throw new Error(`Command passed to .addCommand() must have a name
- specify the name in Command constructor or using .name()`);
    }

    opts = opts || {};
    if (opts.isDefault) this._defaultCommandName = cmd._name;
    if (opts.noHelp || opts.hidden) cmd._hidden = true; // modifying passed command due to existing implementation

    this._registerCommand(cmd);
    cmd.parent = this;
    cmd._checkForBrokenPassThrough();

    return this;
  }

  /**
   * Factory routine to create a new unattached argument.
   *
   * See .argument() for creating an attached argument, which uses this routine to
   * create the argument. You can override createArgument to return a custom argument.
   *
   * @param {string} name
   * @param {string} [description]
   * @return {Argument} new argument
   */

  createArgument(name, description) {
    return new Argument(name, description);
  }

  /**
   * Define argument syntax for command.
   *
   * The default is that the argument is required, and you can explicitly
   * indicate this with <> around the name. Put [] around the name for an optional argument.
   *
   * @example
   * program.argument('<input-file>');
   * program.argument('[output-file]');
   *
   * @param {string} name
   * @param {string} [description]
   * @param {(Function|*)} [parseArg] - custom argument processing function or default value
   * @param {*} [defaultValue]
   * @return {Command} `this` command for chaining
   */
  argument(name, description, parseArg, defaultValue) {
    const argument = this.createArgument(name, description);
    if (typeof parseArg === 'function') {
      argument.default(defaultValue).argParser(parseArg);
    } else {
      argument.default(parseArg);
    }
    this.addArgument(argument);
    return this;
  }

  /**
   * Define argument syntax for command, adding multiple at once (without descriptions).
   *
   * See also .argument().
   *
   * @example
   * program.arguments('<cmd> [env]');
   *
   * @param {string} names
   * @return {Command} `this` command for chaining
   */

  arguments(names) {
    names
      .trim()
      .split(/ +/)
      .forEach((detail) => {
        this.argument(detail);
      });
    return this;
  }

  /**
   * Define argument syntax for command, adding a prepared argument.
   *
   * @param {Argument} argument
   * @return {Command} `this` command for chaining
   */
  addArgument(argument) {
    const previousArgument = this.registeredArguments.slice(-1)[0];
    if (previousArgument?.variadic) {
      throw new Error(
        `only the last argument can be variadic '${previousArgument.name()}'`,
      );
    }
    if (
      argument.required &&
      argument.defaultValue !== undefined &&
      argument.parseArg === undefined
    ) {
      throw new Error(
        `a default value for a required argument is never used: '${argument.name()}'`,
      );
    }
    this.registeredArguments.push(argument);
    return this;
  }

  /**
   * Customise or override default help command. By default a help command is automatically added if your command has subcommands.
   *
   * @example
   *    program.helpCommand('help [cmd]');
   *    program.helpCommand('help [cmd]', 'show help');
   *    program.helpCommand(false); // suppress default help command
   *    program.helpCommand(true); // add help command even if no subcommands
   *
   * @param {string|boolean} enableOrNameAndArgs - enable with custom name and/or arguments, or boolean to override whether added
   * @param {string} [description] - custom description
   * @return {Command} `this` command for chaining
   */

  helpCommand(enableOrNameAndArgs, description) {
    if (typeof enableOrNameAndArgs === 'boolean') {
      this._addImplicitHelpCommand = enableOrNameAndArgs;
      if (enableOrNameAndArgs && this._defaultCommandGroup) {
        // make the command to store the group
        this._initCommandGroup(this._getHelpCommand());
      }
      return this;
    }

    const nameAndArgs = enableOrNameAndArgs ?? 'help [command]';
    const [, helpName, helpArgs] = nameAndArgs.match(/([^ ]+) *(.*)/);
    const helpDescription = description ?? 'display help for command';

    const helpCommand = this.createCommand(helpName);
    helpCommand.helpOption(false);
    if (helpArgs) helpCommand.arguments(helpArgs);
    if (helpDescription) helpCommand.description(helpDescription);

    this._addImplicitHelpCommand = true;
    this._helpCommand = helpCommand;
    // init group unless lazy create
    if (enableOrNameAndArgs || description) this._initCommandGroup(helpCommand);

    return this;
  }

  /**
   * Add prepared custom help command.
   *
   * @param {(Command|string|boolean)} helpCommand - custom help command, or deprecated enableOrNameAndArgs as for `.helpCommand()`
   * @param {string} [deprecatedDescription] - deprecated custom description used with custom name only
   * @return {Command} `this` command for chaining
   */
  addHelpCommand(helpCommand, deprecatedDescription) {
    // If not passed an object, call through to helpCommand for backwards compatibility,
    // as addHelpCommand was originally used like helpCommand is now.
    if (typeof helpCommand !== 'object') {
      this.helpCommand(helpCommand, deprecatedDescription);
      return this;
    }

    this._addImplicitHelpCommand = true;
    this._helpCommand = helpCommand;
    this._initCommandGroup(helpCommand);
    return this;
  }

  /**
   * Lazy create help command.
   *
   * @return {(Command|null)}
   * @package
   */
  _getHelpCommand() {
    const hasImplicitHelpCommand =
      this._addImplicitHelpCommand ??
      (this.commands.length &&
        !this._actionHandler &&
        !this._findCommand('help'));

    if (hasImplicitHelpCommand) {
      if (this._helpCommand === undefined) {
        this.helpCommand(undefined, undefined); // use default name and description
      }
      return this._helpCommand;
    }
    return null;
  }

  /**
   * Add hook for life cycle event.
   *
   * @param {string} event
   * @param {Function} listener
   * @return {Command} `this` command for chaining
   */

  hook(event, listener) {
    const allowedValues = ['preSubcommand', 'preAction', 'postAction'];
    if (!allowedValues.includes(event)) {
      throw new Error(`Unexpected value for event passed to hook : '${event}'.
Expecting one of '${allowedValues.join("', '")}'`);
    }
    if (this._lifeCycleHooks[event]) {
      this._lifeCycleHooks[event].push(listener);
    } else {
      this._lifeCycleHooks[event] = [listener];
    }
    return this;
  }

  /**
   * Register callback to use as replacement for calling process.exit.
   *
   * @param {Function} [fn] optional callback which will be passed a CommanderError, defaults to throwing
   * @return {Command} `this` command for chaining
   */

  exitOverride(fn) {
    if (fn) {
      this._exitCallback = fn;
    } else {
      this._exitCallback = (err) => {
        if (err.code !== 'commander.executeSubCommandAsync') {
          throw err;
        } else {
          // Async callback from spawn events, not useful to throw.
        }
      };
    }
    return this;
  }

  /**
   * Call process.exit, and _exitCallback if defined.
   *
   * @param {number} exitCode exit code for using with process.exit
   * @param {string} code an id string representing the error
   * @param {string} message human-readable description of the error
   * @return never
   * @private
   */

  _exit(exitCode, code, message) {
    if (this._exitCallback) {
      this._exitCallback(new CommanderError(exitCode, code, message));
      // Expecting this line is not reached.
    }
    process.exit(exitCode);
  }

  /**
   * Register callback `fn` for the command.
   *
   * @example
   * program
   *   .command('serve')
   *   .description('start service')
   *   .action(function() {
   *      // do work here
   *   });
   *
   * @param {Function} fn
   * @return {Command} `this` command for chaining
   */

  action(fn) {
    const listener = (args) => {
      // The .action callback takes an extra parameter which is the command or options.
      const expectedArgsCount = this.registeredArguments.length;
      const actionArgs = args.slice(0, expectedArgsCount);
      if (this._storeOptionsAsProperties) {
        actionArgs[expectedArgsCount] = this; // backwards compatible "options"
      } else {
        actionArgs[expectedArgsCount] = this.opts();
      }
      actionArgs.push(this);

      return fn.apply(this, actionArgs);
    };
    this._actionHandler = listener;
    return this;
  }

  /**
   * Factory routine to create a new unattached option.
   *
   * See .option() for creating an attached option, which uses this routine to
   * create the option. You can override createOption to return a custom option.
   *
   * @param {string} flags
   * @param {string} [description]
   * @return {Option} new option
   */

  createOption(flags, description) {
    return new Option(flags, description);
  }

  /**
   * Wrap parseArgs to catch 'commander.invalidArgument'.
   *
   * @param {(Option | Argument)} target
   * @param {string} value
   * @param {*} previous
   * @param {string} invalidArgumentMessage
   * @private
   */

  _callParseArg(target, value, previous, invalidArgumentMessage) {
    try {
      return target.parseArg(value, previous);
    } catch (err) {
      if (err.code === 'commander.invalidArgument') {
        const message = `${invalidArgumentMessage} ${err.message}`;
        this.error(message, { exitCode: err.exitCode, code: err.code });
      }
      throw err;
    }
  }

  /**
   * Check for option flag conflicts.
   * Register option if no conflicts found, or throw on conflict.
   *
   * @param {Option} option
   * @private
   */

  _registerOption(option) {
    const matchingOption =
      (option.short && this._findOption(option.short)) ||
      (option.long && this._findOption(option.long));
    if (matchingOption) {
      const matchingFlag =
        option.long && this._findOption(option.long)
          ? option.long
          : option.short;
      throw new Error(`Cannot add option '${option.flags}'${this._name && ` to command '${this._name}'`} due to conflicting flag '${matchingFlag}'
-  already used by option '${matchingOption.flags}'`);
    }

    this._initOptionGroup(option);
    this.options.push(option);
  }

  /**
   * Check for command name and alias conflicts with existing commands.
   * Register command if no conflicts found, or throw on conflict.
   *
   * @param {Command} command
   * @private
   */

  _registerCommand(command) {
    const knownBy = (cmd) => {
      return [cmd.name()].concat(cmd.aliases());
    };

    const alreadyUsed = knownBy(command).find((name) =>
      this._findCommand(name),
    );
    if (alreadyUsed) {
      const existingCmd = knownBy(this._findCommand(alreadyUsed)).join('|');
      const newCmd = knownBy(command).join('|');
      throw new Error(
        `cannot add command '${newCmd}' as already have command '${existingCmd}'`,
      );
    }

    this._initCommandGroup(command);
    this.commands.push(command);
  }

  /**
   * Add an option.
   *
   * @param {Option} option
   * @return {Command} `this` command for chaining
   */
  addOption(option) {
    this._registerOption(option);

    const oname = option.name();
    const name = option.attributeName();

    // store default value
    if (option.negate) {
      // --no-foo is special and defaults foo to true, unless a --foo option is already defined
      const positiveLongFlag = option.long.replace(/^--no-/, '--');
      if (!this._findOption(positiveLongFlag)) {
        this.setOptionValueWithSource(
          name,
          option.defaultValue === undefined ? true : option.defaultValue,
          'default',
        );
      }
    } else if (option.defaultValue !== undefined) {
      this.setOptionValueWithSource(name, option.defaultValue, 'default');
    }

    // handler for cli and env supplied values
    const handleOptionValue = (val, invalidValueMessage, valueSource) => {
      // val is null for optional option used without an optional-argument.
      // val is undefined for boolean and negated option.
      if (val == null && option.presetArg !== undefined) {
        val = option.presetArg;
      }

      // custom processing
      const oldValue = this.getOptionValue(name);
      if (val !== null && option.parseArg) {
        val = this._callParseArg(option, val, oldValue, invalidValueMessage);
      } else if (val !== null && option.variadic) {
        val = option._collectValue(val, oldValue);
      }

      // Fill-in appropriate missing values. Long winded but easy to follow.
      if (val == null) {
        if (option.negate) {
          val = false;
        } else if (option.isBoolean() || option.optional) {
          val = true;
        } else {
          val = ''; // not normal, parseArg might have failed or be a mock function for testing
        }
      }
      this.setOptionValueWithSource(name, val, valueSource);
    };

    this.on('option:' + oname, (val) => {
      const invalidValueMessage = `error: option '${option.flags}' argument '${val}' is invalid.`;
      handleOptionValue(val, invalidValueMessage, 'cli');
    });

    if (option.envVar) {
      this.on('optionEnv:' + oname, (val) => {
        const invalidValueMessage = `error: option '${option.flags}' value '${val}' from env '${option.envVar}' is invalid.`;
        handleOptionValue(val, invalidValueMessage, 'env');
      });
    }

    return this;
  }

  /**
   * Internal implementation shared by .option() and .requiredOption()
   *
   * @return {Command} `this` command for chaining
   * @private
   */
  _optionEx(config, flags, description, fn, defaultValue) {
    if (typeof flags === 'object' && flags instanceof Option) {
      throw new Error(
        'To add an Option object use addOption() instead of option() or requiredOption()',
      );
    }
    const option = this.createOption(flags, description);
    option.makeOptionMandatory(!!config.mandatory);
    if (typeof fn === 'function') {
      option.default(defaultValue).argParser(fn);
    } else if (fn instanceof RegExp) {
      // deprecated
      const regex = fn;
      fn = (val, def) => {
        const m = regex.exec(val);
        return m ? m[0] : def;
      };
      option.default(defaultValue).argParser(fn);
    } else {
      option.default(fn);
    }

    return this.addOption(option);
  }

  /**
   * Define option with `flags`, `description`, and optional argument parsing function or `defaultValue` or both.
   *
   * The `flags` string contains the short and/or long flags, separated by comma, a pipe or space. A required
   * option-argument is indicated by `<>` and an optional option-argument by `[]`.
   *
   * See the README for more details, and see also addOption() and requiredOption().
   *
   * @example
   * program
   *     .option('-p, --pepper', 'add pepper')
   *     .option('--pt, --pizza-type <TYPE>', 'type of pizza') // required option-argument
   *     .option('-c, --cheese [CHEESE]', 'add extra cheese', 'mozzarella') // optional option-argument with default
   *     .option('-t, --tip <VALUE>', 'add tip to purchase cost', parseFloat) // custom parse function
   *
   * @param {string} flags
   * @param {string} [description]
   * @param {(Function|*)} [parseArg] - custom option processing function or default value
   * @param {*} [defaultValue]
   * @return {Command} `this` command for chaining
   */

  option(flags, description, parseArg, defaultValue) {
    return this._optionEx({}, flags, description, parseArg, defaultValue);
  }

  /**
   * Add a required option which must have a value after parsing. This usually means
   * the option must be specified on the command line. (Otherwise the same as .option().)
   *
   * The `flags` string contains the short and/or long flags, separated by comma, a pipe or space.
   *
   * @param {string} flags
   * @param {string} [description]
   * @param {(Function|*)} [parseArg] - custom option processing function or default value
   * @param {*} [defaultValue]
   * @return {Command} `this` command for chaining
   */

  requiredOption(flags, description, parseArg, defaultValue) {
    return this._optionEx(
      { mandatory: true },
      flags,
      description,
      parseArg,
      defaultValue,
    );
  }

  /**
   * Alter parsing of short flags with optional values.
   *
   * @example
   * // for `.option('-f,--flag [value]'):
   * program.combineFlagAndOptionalValue(true);  // `-f80` is treated like `--flag=80`, this is the default behaviour
   * program.combineFlagAndOptionalValue(false) // `-fb` is treated like `-f -b`
   *
   * @param {boolean} [combine] - if `true` or omitted, an optional value can be specified directly after the flag.
   * @return {Command} `this` command for chaining
   */
  combineFlagAndOptionalValue(combine = true) {
    this._combineFlagAndOptionalValue = !!combine;
    return this;
  }

  /**
   * Allow unknown options on the command line.
   *
   * @param {boolean} [allowUnknown] - if `true` or omitted, no error will be thrown for unknown options.
   * @return {Command} `this` command for chaining
   */
  allowUnknownOption(allowUnknown = true) {
    this._allowUnknownOption = !!allowUnknown;
    return this;
  }

  /**
   * Allow excess command-arguments on the command line. Pass false to make excess arguments an error.
   *
   * @param {boolean} [allowExcess] - if `true` or omitted, no error will be thrown for excess arguments.
   * @return {Command} `this` command for chaining
   */
  allowExcessArguments(allowExcess = true) {
    this._allowExcessArguments = !!allowExcess;
    return this;
  }

  /**
   * Enable positional options. Positional means global options are specified before subcommands which lets
   * subcommands reuse the same option names, and also enables subcommands to turn on passThroughOptions.
   * The default behaviour is non-positional and global options may appear anywhere on the command line.
   *
   * @param {boolean} [positional]
   * @return {Command} `this` command for chaining
   */
  enablePositionalOptions(positional = true) {
    this._enablePositionalOptions = !!positional;
    return this;
  }

  /**
   * Pass through options that come after command-arguments rather than treat them as command-options,
   * so actual command-options come before command-arguments. Turning this on for a subcommand requires
   * positional options to have been enabled on the program (parent commands).
   * The default behaviour is non-positional and options may appear before or after command-arguments.
   *
   * @param {boolean} [passThrough] for unknown options.
   * @return {Command} `this` command for chaining
   */
  passThroughOptions(passThrough = true) {
    this._passThroughOptions = !!passThrough;
    this._checkForBrokenPassThrough();
    return this;
  }

  /**
   * @private
   */

  _checkForBrokenPassThrough() {
    if (
      this.parent &&
      this._passThroughOptions &&
      !this.parent._enablePositionalOptions
    ) {
      throw new Error(
        `passThroughOptions cannot be used for '${this._name}' without turning on enablePositionalOptions for parent command(s)`,
      );
    }
  }

  /**
   * Whether to store option values as properties on command object,
   * or store separately (specify false). In both cases the option values can be accessed using .opts().
   *
   * @param {boolean} [storeAsProperties=true]
   * @return {Command} `this` command for chaining
   */

  storeOptionsAsProperties(storeAsProperties = true) {
    if (this.options.length) {
      throw new Error('call .storeOptionsAsProperties() before adding options');
    }
    if (Object.keys(this._optionValues).length) {
      throw new Error(
        'call .storeOptionsAsProperties() before setting option values',
      );
    }
    this._storeOptionsAsProperties = !!storeAsProperties;
    return this;
  }

  /**
   * Retrieve option value.
   *
   * @param {string} key
   * @return {object} value
   */

  getOptionValue(key) {
    if (this._storeOptionsAsProperties) {
      return this[key];
    }
    return this._optionValues[key];
  }

  /**
   * Store option value.
   *
   * @param {string} key
   * @param {object} value
   * @return {Command} `this` command for chaining
   */

  setOptionValue(key, value) {
    return this.setOptionValueWithSource(key, value, undefined);
  }

  /**
   * Store option value and where the value came from.
   *
   * @param {string} key
   * @param {object} value
   * @param {string} source - expected values are default/config/env/cli/implied
   * @return {Command} `this` command for chaining
   */

  setOptionValueWithSource(key, value, source) {
    if (this._storeOptionsAsProperties) {
      this[key] = value;
    } else {
      this._optionValues[key] = value;
    }
    this._optionValueSources[key] = source;
    return this;
  }

  /**
   * Get source of option value.
   * Expected values are default | config | env | cli | implied
   *
   * @param {string} key
   * @return {string}
   */

  getOptionValueSource(key) {
    return this._optionValueSources[key];
  }

  /**
   * Get source of option value. See also .optsWithGlobals().
   * Expected values are default | config | env | cli | implied
   *
   * @param {string} key
   * @return {string}
   */

  getOptionValueSourceWithGlobals(key) {
    // global overwrites local, like optsWithGlobals
    let source;
    this._getCommandAndAncestors().forEach((cmd) => {
      if (cmd.getOptionValueSource(key) !== undefined) {
        source = cmd.getOptionValueSource(key);
      }
    });
    return source;
  }

  /**
   * Get user arguments from implied or explicit arguments.
   * Side-effects: set _scriptPath if args included script. Used for default program name, and subcommand searches.
   *
   * @private
   */

  _prepareUserArgs(argv, parseOptions) {
    if (argv !== undefined && !Array.isArray(argv)) {
      throw new Error('first parameter to parse must be array or undefined');
    }
    parseOptions = parseOptions || {};

    // auto-detect argument conventions if nothing supplied
    if (argv === undefined && parseOptions.from === undefined) {
      if (process.versions?.electron) {
        parseOptions.from = 'electron';
      }
      // check node specific options for scenarios where user CLI args follow executable without scriptname
      const execArgv = process.execArgv ?? [];
      if (
        execArgv.includes('-e') ||
        execArgv.includes('--eval') ||
        execArgv.includes('-p') ||
        execArgv.includes('--print')
      ) {
        parseOptions.from = 'eval'; // internal usage, not documented
      }
    }

    // default to using process.argv
    if (argv === undefined) {
      argv = process.argv;
    }
    this.rawArgs = argv.slice();

    // extract the user args and scriptPath
    let userArgs;
    switch (parseOptions.from) {
      case undefined:
      case 'node':
        this._scriptPath = argv[1];
        userArgs = argv.slice(2);
        break;
      case 'electron':
        // @ts-ignore: because defaultApp is an unknown property
        if (process.defaultApp) {
          this._scriptPath = argv[1];
          userArgs = argv.slice(2);
        } else {
          userArgs = argv.slice(1);
        }
        break;
      case 'user':
        userArgs = argv.slice(0);
        break;
      case 'eval':
        userArgs = argv.slice(1);
        break;
      default:
        throw new Error(
          `unexpected parse option { from: '${parseOptions.from}' }`,
        );
    }

    // Find default name for program from arguments.
    if (!this._name && this._scriptPath)
      this.nameFromFilename(this._scriptPath);
    this._name = this._name || 'program';

    return userArgs;
  }

  /**
   * Parse `argv`, setting options and invoking commands when defined.
   *
   * Use parseAsync instead of parse if any of your action handlers are async.
   *
   * Call with no parameters to parse `process.argv`. Detects Electron and special node options like `node --eval`. Easy mode!
   *
   * Or call with an array of strings to parse, and optionally where the user arguments start by specifying where the arguments are `from`:
   * - `'node'`: default, `argv[0]` is the application and `argv[1]` is the script being run, with user arguments after that
   * - `'electron'`: `argv[0]` is the application and `argv[1]` varies depending on whether the electron application is packaged
   * - `'user'`: just user arguments
   *
   * @example
   * program.parse(); // parse process.argv and auto-detect electron and special node flags
   * program.parse(process.argv); // assume argv[0] is app and argv[1] is script
   * program.parse(my-args, { from: 'user' }); // just user supplied arguments, nothing special about argv[0]
   *
   * @param {string[]} [argv] - optional, defaults to process.argv
   * @param {object} [parseOptions] - optionally specify style of options with from: node/user/electron
   * @param {string} [parseOptions.from] - where the args are from: 'node', 'user', 'electron'
   * @return {Command} `this` command for chaining
   */

  parse(argv, parseOptions) {
    this._prepareForParse();
    const userArgs = this._prepareUserArgs(argv, parseOptions);
    this._parseCommand([], userArgs);

    return this;
  }

  /**
   * Parse `argv`, setting options and invoking commands when defined.
   *
   * Call with no parameters to parse `process.argv`. Detects Electron and special node options like `node --eval`. Easy mode!
   *
   * Or call with an array of strings to parse, and optionally where the user arguments start by specifying where the arguments are `from`:
   * - `'node'`: default, `argv[0]` is the application and `argv[1]` is the script being run, with user arguments after that
   * - `'electron'`: `argv[0]` is the application and `argv[1]` varies depending on whether the electron application is packaged
   * - `'user'`: just user arguments
   *
   * @example
   * await program.parseAsync(); // parse process.argv and auto-detect electron and special node flags
   * await program.parseAsync(process.argv); // assume argv[0] is app and argv[1] is script
   * await program.parseAsync(my-args, { from: 'user' }); // just user supplied arguments, nothing special about argv[0]
   *
   * @param {string[]} [argv]
   * @param {object} [parseOptions]
   * @param {string} parseOptions.from - where the args are from: 'node', 'user', 'electron'
   * @return {Promise}
   */

  async parseAsync(argv, parseOptions) {
    this._prepareForParse();
    const userArgs = this._prepareUserArgs(argv, parseOptions);
    await this._parseCommand([], userArgs);

    return this;
  }

  _prepareForParse() {
    if (this._savedState === null) {
      this.saveStateBeforeParse();
    } else {
      this.restoreStateBeforeParse();
    }
  }

  /**
   * Called the first time parse is called to save state and allow a restore before subsequent calls to parse.
   * Not usually called directly, but available for subclasses to save their custom state.
   *
   * This is called in a lazy way. Only commands used in parsing chain will have state saved.
   */
  saveStateBeforeParse() {
    this._savedState = {
      // name is stable if supplied by author, but may be unspecified for root command and deduced during parsing
      _name: this._name,
      // option values before parse have default values (including false for negated options)
      // shallow clones
      _optionValues: { ...this._optionValues },
      _optionValueSources: { ...this._optionValueSources },
    };
  }

  /**
   * Restore state before parse for calls after the first.
   * Not usually called directly, but available for subclasses to save their custom state.
   *
   * This is called in a lazy way. Only commands used in parsing chain will have state restored.
   */
  restoreStateBeforeParse() {
    if (this._storeOptionsAsProperties)
      throw new Error(`Can not call parse again when storeOptionsAsProperties is true.
- either make a new Command for each call to parse, or stop storing options as properties`);

    // clear state from _prepareUserArgs
    this._name = this._savedState._name;
    this._scriptPath = null;
    this.rawArgs = [];
    // clear state from setOptionValueWithSource
    this._optionValues = { ...this._savedState._optionValues };
    this._optionValueSources = { ...this._savedState._optionValueSources };
    // clear state from _parseCommand
    this.args = [];
    // clear state from _processArguments
    this.processedArgs = [];
  }

  /**
   * Throw if expected executable is missing. Add lots of help for author.
   *
   * @param {string} executableFile
   * @param {string} executableDir
   * @param {string} subcommandName
   */
  _checkForMissingExecutable(executableFile, executableDir, subcommandName) {
    if (fs.existsSync(executableFile)) return;

    const executableDirMessage = executableDir
      ? `searched for local subcommand relative to directory '${executableDir}'`
      : 'no directory for search for local subcommand, use .executableDir() to supply a custom directory';
    const executableMissing = `'${executableFile}' does not exist
 - if '${subcommandName}' is not meant to be an executable command, remove description parameter from '.command()' and use '.description()' instead
 - if the default executable name is not suitable, use the executableFile option to supply a custom name or path
 - ${executableDirMessage}`;
    throw new Error(executableMissing);
  }

  /**
   * Execute a sub-command executable.
   *
   * @private
   */

  _executeSubCommand(subcommand, args) {
    args = args.slice();
    let launchWithNode = false; // Use node for source targets so do not need to get permissions correct, and on Windows.
    const sourceExt = ['.js', '.ts', '.tsx', '.mjs', '.cjs'];

    function findFile(baseDir, baseName) {
      // Look for specified file
      const localBin = path.resolve(baseDir, baseName);
      if (fs.existsSync(localBin)) return localBin;

      // Stop looking if candidate already has an expected extension.
      if (sourceExt.includes(path.extname(baseName))) return undefined;

      // Try all the extensions.
      const foundExt = sourceExt.find((ext) =>
        fs.existsSync(`${localBin}${ext}`),
      );
      if (foundExt) return `${localBin}${foundExt}`;

      return undefined;
    }

    // Not checking for help first. Unlikely to have mandatory and executable, and can't robustly test for help flags in external command.
    this._checkForMissingMandatoryOptions();
    this._checkForConflictingOptions();

    // executableFile and executableDir might be full path, or just a name
    let executableFile =
      subcommand._executableFile || `${this._name}-${subcommand._name}`;
    let executableDir = this._executableDir || '';
    if (this._scriptPath) {
      let resolvedScriptPath; // resolve possible symlink for installed npm binary
      try {
        resolvedScriptPath = fs.realpathSync(this._scriptPath);
      } catch {
        resolvedScriptPath = this._scriptPath;
      }
      executableDir = path.resolve(
        path.dirname(resolvedScriptPath),
        executableDir,
      );
    }

    // Look for a local file in preference to a command in PATH.
    if (executableDir) {
      let localFile = findFile(executableDir, executableFile);

      // Legacy search using prefix of script name instead of command name
      if (!localFile && !subcommand._executableFile && this._scriptPath) {
        const legacyName = path.basename(
          this._scriptPath,
          path.extname(this._scriptPath),
        );
        if (legacyName !== this._name) {
          localFile = findFile(
            executableDir,
            `${legacyName}-${subcommand._name}`,
          );
        }
      }
      executableFile = localFile || executableFile;
    }

    launchWithNode = sourceExt.includes(path.extname(executableFile));

    let proc;
    if (process.platform !== 'win32') {
      if (launchWithNode) {
        args.unshift(executableFile);
        // add executable arguments to spawn
        args = incrementNodeInspectorPort(process.execArgv).concat(args);

        proc = childProcess.spawn(process.argv[0], args, { stdio: 'inherit' });
      } else {
        proc = childProcess.spawn(executableFile, args, { stdio: 'inherit' });
      }
    } else {
      this._checkForMissingExecutable(
        executableFile,
        executableDir,
        subcommand._name,
      );
      args.unshift(executableFile);
      // add executable arguments to spawn
      args = incrementNodeInspectorPort(process.execArgv).concat(args);
      proc = childProcess.spawn(process.execPath, args, { stdio: 'inherit' });
    }

    if (!proc.killed) {
      // testing mainly to avoid leak warnings during unit tests with mocked spawn
      const signals = ['SIGUSR1', 'SIGUSR2', 'SIGTERM', 'SIGINT', 'SIGHUP'];
      signals.forEach((signal) => {
        process.on(signal, () => {
          if (proc.killed === false && proc.exitCode === null) {
            // @ts-ignore because signals not typed to known strings
            proc.kill(signal);
          }
        });
      });
    }

    // By default terminate process when spawned process terminates.
    const exitCallback = this._exitCallback;
    proc.on('close', (code) => {
      code = code ?? 1; // code is null if spawned process terminated due to a signal
      if (!exitCallback) {
        process.exit(code);
      } else {
        exitCallback(
          new CommanderError(
            code,
            'commander.executeSubCommandAsync',
            '(close)',
          ),
        );
      }
    });
    proc.on('error', (err) => {
      // @ts-ignore: because err.code is an unknown property
      if (err.code === 'ENOENT') {
        this._checkForMissingExecutable(
          executableFile,
          executableDir,
          subcommand._name,
        );
        // @ts-ignore: because err.code is an unknown property
      } else if (err.code === 'EACCES') {
        throw new Error(`'${executableFile}' not executable`);
      }
      if (!exitCallback) {
        process.exit(1);
      } else {
        const wrappedError = new CommanderError(
          1,
          'commander.executeSubCommandAsync',
          '(error)',
        );
        wrappedError.nestedError = err;
        exitCallback(wrappedError);
      }
    });

    // Store the reference to the child process
    this.runningCommand = proc;
  }

  /**
   * @private
   */

  _dispatchSubcommand(commandName, operands, unknown) {
    const subCommand = this._findCommand(commandName);
    if (!subCommand) this.help({ error: true });

    subCommand._prepareForParse();
    let promiseChain;
    promiseChain = this._chainOrCallSubCommandHook(
      promiseChain,
      subCommand,
      'preSubcommand',
    );
    promiseChain = this._chainOrCall(promiseChain, () => {
      if (subCommand._executableHandler) {
        this._executeSubCommand(subCommand, operands.concat(unknown));
      } else {
        return subCommand._parseCommand(operands, unknown);
      }
    });
    return promiseChain;
  }

  /**
   * Invoke help directly if possible, or dispatch if necessary.
   * e.g. help foo
   *
   * @private
   */

  _dispatchHelpCommand(subcommandName) {
    if (!subcommandName) {
      this.help();
    }
    const subCommand = this._findCommand(subcommandName);
    if (subCommand && !subCommand._executableHandler) {
      subCommand.help();
    }

    // Fallback to parsing the help flag to invoke the help.
    return this._dispatchSubcommand(
      subcommandName,
      [],
      [this._getHelpOption()?.long ?? this._getHelpOption()?.short ?? '--help'],
    );
  }

  /**
   * Check this.args against expected this.registeredArguments.
   *
   * @private
   */

  _checkNumberOfArguments() {
    // too few
    this.registeredArguments.forEach((arg, i) => {
      if (arg.required && this.args[i] == null) {
        this.missingArgument(arg.name());
      }
    });
    // too many
    if (
      this.registeredArguments.length > 0 &&
      this.registeredArguments[this.registeredArguments.length - 1].variadic
    ) {
      return;
    }
    if (this.args.length > this.registeredArguments.length) {
      this._excessArguments(this.args);
    }
  }

  /**
   * Process this.args using this.registeredArguments and save as this.processedArgs!
   *
   * @private
   */

  _processArguments() {
    const myParseArg = (argument, value, previous) => {
      // Extra processing for nice error message on parsing failure.
      let parsedValue = value;
      if (value !== null && argument.parseArg) {
        const invalidValueMessage = `error: command-argument value '${value}' is invalid for argument '${argument.name()}'.`;
        parsedValue = this._callParseArg(
          argument,
          value,
          previous,
          invalidValueMessage,
        );
      }
      return parsedValue;
    };

    this._checkNumberOfArguments();

    const processedArgs = [];
    this.registeredArguments.forEach((declaredArg, index) => {
      let value = declaredArg.defaultValue;
      if (declaredArg.variadic) {
        // Collect together remaining arguments for passing together as an array.
        if (index < this.args.length) {
          value = this.args.slice(index);
          if (declaredArg.parseArg) {
            value = value.reduce((processed, v) => {
              return myParseArg(declaredArg, v, processed);
            }, declaredArg.defaultValue);
          }
        } else if (value === undefined) {
          value = [];
        }
      } else if (index < this.args.length) {
        value = this.args[index];
        if (declaredArg.parseArg) {
          value = myParseArg(declaredArg, value, declaredArg.defaultValue);
        }
      }
      processedArgs[index] = value;
    });
    this.processedArgs = processedArgs;
  }

  /**
   * Once we have a promise we chain, but call synchronously until then.
   *
   * @param {(Promise|undefined)} promise
   * @param {Function} fn
   * @return {(Promise|undefined)}
   * @private
   */

  _chainOrCall(promise, fn) {
    // thenable
    if (promise?.then && typeof promise.then === 'function') {
      // already have a promise, chain callback
      return promise.then(() => fn());
    }
    // callback might return a promise
    return fn();
  }

  /**
   *
   * @param {(Promise|undefined)} promise
   * @param {string} event
   * @return {(Promise|undefined)}
   * @private
   */

  _chainOrCallHooks(promise, event) {
    let result = promise;
    const hooks = [];
    this._getCommandAndAncestors()
      .reverse()
      .filter((cmd) => cmd._lifeCycleHooks[event] !== undefined)
      .forEach((hookedCommand) => {
        hookedCommand._lifeCycleHooks[event].forEach((callback) => {
          hooks.push({ hookedCommand, callback });
        });
      });
    if (event === 'postAction') {
      hooks.reverse();
    }

    hooks.forEach((hookDetail) => {
      result = this._chainOrCall(result, () => {
        return hookDetail.callback(hookDetail.hookedCommand, this);
      });
    });
    return result;
  }

  /**
   *
   * @param {(Promise|undefined)} promise
   * @param {Command} subCommand
   * @param {string} event
   * @return {(Promise|undefined)}
   * @private
   */

  _chainOrCallSubCommandHook(promise, subCommand, event) {
    let result = promise;
    if (this._lifeCycleHooks[event] !== undefined) {
      this._lifeCycleHooks[event].forEach((hook) => {
        result = this._chainOrCall(result, () => {
          return hook(this, subCommand);
        });
      });
    }
    return result;
  }

  /**
   * Process arguments in context of this command.
   * Returns action result, in case it is a promise.
   *
   * @private
   */

  _parseCommand(operands, unknown) {
    const parsed = this.parseOptions(unknown);
    this._parseOptionsEnv(); // after cli, so parseArg not called on both cli and env
    this._parseOptionsImplied();
    operands = operands.concat(parsed.operands);
    unknown = parsed.unknown;
    this.args = operands.concat(unknown);

    if (operands && this._findCommand(operands[0])) {
      return this._dispatchSubcommand(operands[0], operands.slice(1), unknown);
    }
    if (
      this._getHelpCommand() &&
      operands[0] === this._getHelpCommand().name()
    ) {
      return this._dispatchHelpCommand(operands[1]);
    }
    if (this._defaultCommandName) {
      this._outputHelpIfRequested(unknown); // Run the help for default command from parent rather than passing to default command
      return this._dispatchSubcommand(
        this._defaultCommandName,
        operands,
        unknown,
      );
    }
    if (
      this.commands.length &&
      this.args.length === 0 &&
      !this._actionHandler &&
      !this._defaultCommandName
    ) {
      // probably missing subcommand and no handler, user needs help (and exit)
      this.help({ error: true });
    }

    this._outputHelpIfRequested(parsed.unknown);
    this._checkForMissingMandatoryOptions();
    this._checkForConflictingOptions();

    // We do not always call this check to avoid masking a "better" error, like unknown command.
    const checkForUnknownOptions = () => {
      if (parsed.unknown.length > 0) {
        this.unknownOption(parsed.unknown[0]);
      }
    };

    const commandEvent = `command:${this.name()}`;
    if (this._actionHandler) {
      checkForUnknownOptions();
      this._processArguments();

      let promiseChain;
      promiseChain = this._chainOrCallHooks(promiseChain, 'preAction');
      promiseChain = this._chainOrCall(promiseChain, () =>
        this._actionHandler(this.processedArgs),
      );
      if (this.parent) {
        promiseChain = this._chainOrCall(promiseChain, () => {
          this.parent.emit(commandEvent, operands, unknown); // legacy
        });
      }
      promiseChain = this._chainOrCallHooks(promiseChain, 'postAction');
      return promiseChain;
    }
    if (this.parent?.listenerCount(commandEvent)) {
      checkForUnknownOptions();
      this._processArguments();
      this.parent.emit(commandEvent, operands, unknown); // legacy
    } else if (operands.length) {
      if (this._findCommand('*')) {
        // legacy default command
        return this._dispatchSubcommand('*', operands, unknown);
      }
      if (this.listenerCount('command:*')) {
        // skip option check, emit event for possible misspelling suggestion
        this.emit('command:*', operands, unknown);
      } else if (this.commands.length) {
        this.unknownCommand();
      } else {
        checkForUnknownOptions();
        this._processArguments();
      }
    } else if (this.commands.length) {
      checkForUnknownOptions();
      // This command has subcommands and nothing hooked up at this level, so display help (and exit).
      this.help({ error: true });
    } else {
      checkForUnknownOptions();
      this._processArguments();
      // fall through for caller to handle after calling .parse()
    }
  }

  /**
   * Find matching command.
   *
   * @private
   * @return {Command | undefined}
   */
  _findCommand(name) {
    if (!name) return undefined;
    return this.commands.find(
      (cmd) => cmd._name === name || cmd._aliases.includes(name),
    );
  }

  /**
   * Return an option matching `arg` if any.
   *
   * @param {string} arg
   * @return {Option}
   * @package
   */

  _findOption(arg) {
    return this.options.find((option) => option.is(arg));
  }

  /**
   * Display an error message if a mandatory option does not have a value.
   * Called after checking for help flags in leaf subcommand.
   *
   * @private
   */

  _checkForMissingMandatoryOptions() {
    // Walk up hierarchy so can call in subcommand after checking for displaying help.
    this._getCommandAndAncestors().forEach((cmd) => {
      cmd.options.forEach((anOption) => {
        if (
          anOption.mandatory &&
          cmd.getOptionValue(anOption.attributeName()) === undefined
        ) {
          cmd.missingMandatoryOptionValue(anOption);
        }
      });
    });
  }

  /**
   * Display an error message if conflicting options are used together in this.
   *
   * @private
   */
  _checkForConflictingLocalOptions() {
    const definedNonDefaultOptions = this.options.filter((option) => {
      const optionKey = option.attributeName();
      if (this.getOptionValue(optionKey) === undefined) {
        return false;
      }
      return this.getOptionValueSource(optionKey) !== 'default';
    });

    const optionsWithConflicting = definedNonDefaultOptions.filter(
      (option) => option.conflictsWith.length > 0,
    );

    optionsWithConflicting.forEach((option) => {
      const conflictingAndDefined = definedNonDefaultOptions.find((defined) =>
        option.conflictsWith.includes(defined.attributeName()),
      );
      if (conflictingAndDefined) {
        this._conflictingOption(option, conflictingAndDefined);
      }
    });
  }

  /**
   * Display an error message if conflicting options are used together.
   * Called after checking for help flags in leaf subcommand.
   *
   * @private
   */
  _checkForConflictingOptions() {
    // Walk up hierarchy so can call in subcommand after checking for displaying help.
    this._getCommandAndAncestors().forEach((cmd) => {
      cmd._checkForConflictingLocalOptions();
    });
  }

  /**
   * Parse options from `argv` removing known options,
   * and return argv split into operands and unknown arguments.
   *
   * Side effects: modifies command by storing options. Does not reset state if called again.
   *
   * Examples:
   *
   *     argv => operands, unknown
   *     --known kkk op => [op], []
   *     op --known kkk => [op], []
   *     sub --unknown uuu op => [sub], [--unknown uuu op]
   *     sub -- --unknown uuu op => [sub --unknown uuu op], []
   *
   * @param {string[]} args
   * @return {{operands: string[], unknown: string[]}}
   */

  parseOptions(args) {
    const operands = []; // operands, not options or values
    const unknown = []; // first unknown option and remaining unknown args
    let dest = operands;

    function maybeOption(arg) {
      return arg.length > 1 && arg[0] === '-';
    }

    const negativeNumberArg = (arg) => {
      // return false if not a negative number
      if (!/^-(\d+|\d*\.\d+)(e[+-]?\d+)?$/.test(arg)) return false;
      // negative number is ok unless digit used as an option in command hierarchy
      return !this._getCommandAndAncestors().some((cmd) =>
        cmd.options
          .map((opt) => opt.short)
          .some((short) => /^-\d$/.test(short)),
      );
    };

    // parse options
    let activeVariadicOption = null;
    let activeGroup = null; // working through group of short options, like -abc
    let i = 0;
    while (i < args.length || activeGroup) {
      const arg = activeGroup ?? args[i++];
      activeGroup = null;

      // literal
      if (arg === '--') {
        if (dest === unknown) dest.push(arg);
        dest.push(...args.slice(i));
        break;
      }

      if (
        activeVariadicOption &&
        (!maybeOption(arg) || negativeNumberArg(arg))
      ) {
        this.emit(`option:${activeVariadicOption.name()}`, arg);
        continue;
      }
      activeVariadicOption = null;

      if (maybeOption(arg)) {
        const option = this._findOption(arg);
        // recognised option, call listener to assign value with possible custom processing
        if (option) {
          if (option.required) {
            const value = args[i++];
            if (value === undefined) this.optionMissingArgument(option);
            this.emit(`option:${option.name()}`, value);
          } else if (option.optional) {
            let value = null;
            // historical behaviour is optional value is following arg unless an option
            if (
              i < args.length &&
              (!maybeOption(args[i]) || negativeNumberArg(args[i]))
            ) {
              value = args[i++];
            }
            this.emit(`option:${option.name()}`, value);
          } else {
            // boolean flag
            this.emit(`option:${option.name()}`);
          }
          activeVariadicOption = option.variadic ? option : null;
          continue;
        }
      }

      // Look for combo options following single dash, eat first one if known.
      if (arg.length > 2 && arg[0] === '-' && arg[1] !== '-') {
        const option = this._findOption(`-${arg[1]}`);
        if (option) {
          if (
            option.required ||
            (option.optional && this._combineFlagAndOptionalValue)
          ) {
            // option with value following in same argument
            this.emit(`option:${option.name()}`, arg.slice(2));
          } else {
            // boolean option
            this.emit(`option:${option.name()}`);
            // remove the processed option and keep processing group
            activeGroup = `-${arg.slice(2)}`;
          }
          continue;
        }
      }

      // Look for known long flag with value, like --foo=bar
      if (/^--[^=]+=/.test(arg)) {
        const index = arg.indexOf('=');
        const option = this._findOption(arg.slice(0, index));
        if (option && (option.required || option.optional)) {
          this.emit(`option:${option.name()}`, arg.slice(index + 1));
          continue;
        }
      }

      // Not a recognised option by this command.
      // Might be a command-argument, or subcommand option, or unknown option, or help command or option.

      // An unknown option means further arguments also classified as unknown so can be reprocessed by subcommands.
      // A negative number in a leaf command is not an unknown option.
      if (
        dest === operands &&
        maybeOption(arg) &&
        !(this.commands.length === 0 && negativeNumberArg(arg))
      ) {
        dest = unknown;
      }

      // If using positionalOptions, stop processing our options at subcommand.
      if (
        (this._enablePositionalOptions || this._passThroughOptions) &&
        operands.length === 0 &&
        unknown.length === 0
      ) {
        if (this._findCommand(arg)) {
          operands.push(arg);
          unknown.push(...args.slice(i));
          break;
        } else if (
          this._getHelpCommand() &&
          arg === this._getHelpCommand().name()
        ) {
          operands.push(arg, ...args.slice(i));
          break;
        } else if (this._defaultCommandName) {
          unknown.push(arg, ...args.slice(i));
          break;
        }
      }

      // If using passThroughOptions, stop processing options at first command-argument.
      if (this._passThroughOptions) {
        dest.push(arg, ...args.slice(i));
        break;
      }

      // add arg
      dest.push(arg);
    }

    return { operands, unknown };
  }

  /**
   * Return an object containing local option values as key-value pairs.
   *
   * @return {object}
   */
  opts() {
    if (this._storeOptionsAsProperties) {
      // Preserve original behaviour so backwards compatible when still using properties
      const result = {};
      const len = this.options.length;

      for (let i = 0; i < len; i++) {
        const key = this.options[i].attributeName();
        result[key] =
          key === this._versionOptionName ? this._version : this[key];
      }
      return result;
    }

    return this._optionValues;
  }

  /**
   * Return an object containing merged local and global option values as key-value pairs.
   *
   * @return {object}
   */
  optsWithGlobals() {
    // globals overwrite locals
    return this._getCommandAndAncestors().reduce(
      (combinedOptions, cmd) => Object.assign(combinedOptions, cmd.opts()),
      {},
    );
  }

  /**
   * Display error message and exit (or call exitOverride).
   *
   * @param {string} message
   * @param {object} [errorOptions]
   * @param {string} [errorOptions.code] - an id string representing the error
   * @param {number} [errorOptions.exitCode] - used with process.exit
   */
  error(message, errorOptions) {
    // output handling
    this._outputConfiguration.outputError(
      `${message}\n`,
      this._outputConfiguration.writeErr,
    );
    if (typeof this._showHelpAfterError === 'string') {
      this._outputConfiguration.writeErr(`${this._showHelpAfterError}\n`);
    } else if (this._showHelpAfterError) {
      this._outputConfiguration.writeErr('\n');
      this.outputHelp({ error: true });
    }

    // exit handling
    const config = errorOptions || {};
    const exitCode = config.exitCode || 1;
    const code = config.code || 'commander.error';
    this._exit(exitCode, code, message);
  }

  /**
   * Apply any option related environment variables, if option does
   * not have a value from cli or client code.
   *
   * @private
   */
  _parseOptionsEnv() {
    this.options.forEach((option) => {
      if (option.envVar && option.envVar in process.env) {
        const optionKey = option.attributeName();
        // Priority check. Do not overwrite cli or options from unknown source (client-code).
        if (
          this.getOptionValue(optionKey) === undefined ||
          ['default', 'config', 'env'].includes(
            this.getOptionValueSource(optionKey),
          )
        ) {
          if (option.required || option.optional) {
            // option can take a value
            // keep very simple, optional always takes value
            this.emit(`optionEnv:${option.name()}`, process.env[option.envVar]);
          } else {
            // boolean
            // keep very simple, only care that envVar defined and not the value
            this.emit(`optionEnv:${option.name()}`);
          }
        }
      }
    });
  }

  /**
   * Apply any implied option values, if option is undefined or default value.
   *
   * @private
   */
  _parseOptionsImplied() {
    const dualHelper = new DualOptions(this.options);
    const hasCustomOptionValue = (optionKey) => {
      return (
        this.getOptionValue(optionKey) !== undefined &&
        !['default', 'implied'].includes(this.getOptionValueSource(optionKey))
      );
    };
    this.options
      .filter(
        (option) =>
          option.implied !== undefined &&
          hasCustomOptionValue(option.attributeName()) &&
          dualHelper.valueFromOption(
            this.getOptionValue(option.attributeName()),
            option,
          ),
      )
      .forEach((option) => {
        Object.keys(option.implied)
          .filter((impliedKey) => !hasCustomOptionValue(impliedKey))
          .forEach((impliedKey) => {
            this.setOptionValueWithSource(
              impliedKey,
              option.implied[impliedKey],
              'implied',
            );
          });
      });
  }

  /**
   * Argument `name` is missing.
   *
   * @param {string} name
   * @private
   */

  missingArgument(name) {
    const message = `error: missing required argument '${name}'`;
    this.error(message, { code: 'commander.missingArgument' });
  }

  /**
   * `Option` is missing an argument.
   *
   * @param {Option} option
   * @private
   */

  optionMissingArgument(option) {
    const message = `error: option '${option.flags}' argument missing`;
    this.error(message, { code: 'commander.optionMissingArgument' });
  }

  /**
   * `Option` does not have a value, and is a mandatory option.
   *
   * @param {Option} option
   * @private
   */

  missingMandatoryOptionValue(option) {
    const message = `error: required option '${option.flags}' not specified`;
    this.error(message, { code: 'commander.missingMandatoryOptionValue' });
  }

  /**
   * `Option` conflicts with another option.
   *
   * @param {Option} option
   * @param {Option} conflictingOption
   * @private
   */
  _conflictingOption(option, conflictingOption) {
    // The calling code does not know whether a negated option is the source of the
    // value, so do some work to take an educated guess.
    const findBestOptionFromValue = (option) => {
      const optionKey = option.attributeName();
      const optionValue = this.getOptionValue(optionKey);
      const negativeOption = this.options.find(
        (target) => target.negate && optionKey === target.attributeName(),
      );
      const positiveOption = this.options.find(
        (target) => !target.negate && optionKey === target.attributeName(),
      );
      if (
        negativeOption &&
        ((negativeOption.presetArg === undefined && optionValue === false) ||
          (negativeOption.presetArg !== undefined &&
            optionValue === negativeOption.presetArg))
      ) {
        return negativeOption;
      }
      return positiveOption || option;
    };

    const getErrorMessage = (option) => {
      const bestOption = findBestOptionFromValue(option);
      const optionKey = bestOption.attributeName();
      const source = this.getOptionValueSource(optionKey);
      if (source === 'env') {
        return `environment variable '${bestOption.envVar}'`;
      }
      return `option '${bestOption.flags}'`;
    };

    const message = `error: ${getErrorMessage(option)} cannot be used with ${getErrorMessage(conflictingOption)}`;
    this.error(message, { code: 'commander.conflictingOption' });
  }

  /**
   * Unknown option `flag`.
   *
   * @param {string} flag
   * @private
   */

  unknownOption(flag) {
    if (this._allowUnknownOption) return;
    let suggestion = '';

    if (flag.startsWith('--') && this._showSuggestionAfterError) {
      // Looping to pick up the global options too
      let candidateFlags = [];
      // eslint-disable-next-line @typescript-eslint/no-this-alias
      let command = this;
      do {
        const moreFlags = command
          .createHelp()
          .visibleOptions(command)
          .filter((option) => option.long)
          .map((option) => option.long);
        candidateFlags = candidateFlags.concat(moreFlags);
        command = command.parent;
      } while (command && !command._enablePositionalOptions);
      suggestion = suggestSimilar(flag, candidateFlags);
    }

    const message = `error: unknown option '${flag}'${suggestion}`;
    this.error(message, { code: 'commander.unknownOption' });
  }

  /**
   * Excess arguments, more than expected.
   *
   * @param {string[]} receivedArgs
   * @private
   */

  _excessArguments(receivedArgs) {
    if (this._allowExcessArguments) return;

    const expected = this.registeredArguments.length;
    const s = expected === 1 ? '' : 's';
    const forSubcommand = this.parent ? ` for '${this.name()}'` : '';
    const message = `error: too many arguments${forSubcommand}. Expected ${expected} argument${s} but got ${receivedArgs.length}.`;
    this.error(message, { code: 'commander.excessArguments' });
  }

  /**
   * Unknown command.
   *
   * @private
   */

  unknownCommand() {
    const unknownName = this.args[0];
    let suggestion = '';

    if (this._showSuggestionAfterError) {
      const candidateNames = [];
      this.createHelp()
        .visibleCommands(this)
        .forEach((command) => {
          candidateNames.push(command.name());
          // just visible alias
          if (command.alias()) candidateNames.push(command.alias());
        });
      suggestion = suggestSimilar(unknownName, candidateNames);
    }

    const message = `error: unknown command '${unknownName}'${suggestion}`;
    this.error(message, { code: 'commander.unknownCommand' });
  }

  /**
   * Get or set the program version.
   *
   * This method auto-registers the "-V, --version" option which will print the version number.
   *
   * You can optionally supply the flags and description to override the defaults.
   *
   * @param {string} [str]
   * @param {string} [flags]
   * @param {string} [description]
   * @return {(this | string | undefined)} `this` command for chaining, or version string if no arguments
   */

  version(str, flags, description) {
    if (str === undefined) return this._version;
    this._version = str;
    flags = flags || '-V, --version';
    description = description || 'output the version number';
    const versionOption = this.createOption(flags, description);
    this._versionOptionName = versionOption.attributeName();
    this._registerOption(versionOption);

    this.on('option:' + versionOption.name(), () => {
      this._outputConfiguration.writeOut(`${str}\n`);
      this._exit(0, 'commander.version', str);
    });
    return this;
  }

  /**
   * Set the description.
   *
   * @param {string} [str]
   * @param {object} [argsDescription]
   * @return {(string|Command)}
   */
  description(str, argsDescription) {
    if (str === undefined && argsDescription === undefined)
      return this._description;
    this._description = str;
    if (argsDescription) {
      this._argsDescription = argsDescription;
    }
    return this;
  }

  /**
   * Set the summary. Used when listed as subcommand of parent.
   *
   * @param {string} [str]
   * @return {(string|Command)}
   */
  summary(str) {
    if (str === undefined) return this._summary;
    this._summary = str;
    return this;
  }

  /**
   * Set an alias for the command.
   *
   * You may call more than once to add multiple aliases. Only the first alias is shown in the auto-generated help.
   *
   * @param {string} [alias]
   * @return {(string|Command)}
   */

  alias(alias) {
    if (alias === undefined) return this._aliases[0]; // just return first, for backwards compatibility

    /** @type {Command} */
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    let command = this;
    if (
      this.commands.length !== 0 &&
      this.commands[this.commands.length - 1]._executableHandler
    ) {
      // assume adding alias for last added executable subcommand, rather than this
      command = this.commands[this.commands.length - 1];
    }

    if (alias === command._name)
      throw new Error("Command alias can't be the same as its name");
    const matchingCommand = this.parent?._findCommand(alias);
    if (matchingCommand) {
      // c.f. _registerCommand
      const existingCmd = [matchingCommand.name()]
        .concat(matchingCommand.aliases())
        .join('|');
      throw new Error(
        `cannot add alias '${alias}' to command '${this.name()}' as already have command '${existingCmd}'`,
      );
    }

    command._aliases.push(alias);
    return this;
  }

  /**
   * Set aliases for the command.
   *
   * Only the first alias is shown in the auto-generated help.
   *
   * @param {string[]} [aliases]
   * @return {(string[]|Command)}
   */

  aliases(aliases) {
    // Getter for the array of aliases is the main reason for having aliases() in addition to alias().
    if (aliases === undefined) return this._aliases;

    aliases.forEach((alias) => this.alias(alias));
    return this;
  }

  /**
   * Set / get the command usage `str`.
   *
   * @param {string} [str]
   * @return {(string|Command)}
   */

  usage(str) {
    if (str === undefined) {
      if (this._usage) return this._usage;

      const args = this.registeredArguments.map((arg) => {
        return humanReadableArgName(arg);
      });
      return []
        .concat(
          this.options.length || this._helpOption !== null ? '[options]' : [],
          this.commands.length ? '[command]' : [],
          this.registeredArguments.length ? args : [],
        )
        .join(' ');
    }

    this._usage = str;
    return this;
  }

  /**
   * Get or set the name of the command.
   *
   * @param {string} [str]
   * @return {(string|Command)}
   */

  name(str) {
    if (str === undefined) return this._name;
    this._name = str;
    return this;
  }

  /**
   * Set/get the help group heading for this subcommand in parent command's help.
   *
   * @param {string} [heading]
   * @return {Command | string}
   */

  helpGroup(heading) {
    if (heading === undefined) return this._helpGroupHeading ?? '';
    this._helpGroupHeading = heading;
    return this;
  }

  /**
   * Set/get the default help group heading for subcommands added to this command.
   * (This does not override a group set directly on the subcommand using .helpGroup().)
   *
   * @example
   * program.commandsGroup('Development Commands:);
   * program.command('watch')...
   * program.command('lint')...
   * ...
   *
   * @param {string} [heading]
   * @returns {Command | string}
   */
  commandsGroup(heading) {
    if (heading === undefined) return this._defaultCommandGroup ?? '';
    this._defaultCommandGroup = heading;
    return this;
  }

  /**
   * Set/get the default help group heading for options added to this command.
   * (This does not override a group set directly on the option using .helpGroup().)
   *
   * @example
   * program
   *   .optionsGroup('Development Options:')
   *   .option('-d, --debug', 'output extra debugging')
   *   .option('-p, --profile', 'output profiling information')
   *
   * @param {string} [heading]
   * @returns {Command | string}
   */
  optionsGroup(heading) {
    if (heading === undefined) return this._defaultOptionGroup ?? '';
    this._defaultOptionGroup = heading;
    return this;
  }

  /**
   * @param {Option} option
   * @private
   */
  _initOptionGroup(option) {
    if (this._defaultOptionGroup && !option.helpGroupHeading)
      option.helpGroup(this._defaultOptionGroup);
  }

  /**
   * @param {Command} cmd
   * @private
   */
  _initCommandGroup(cmd) {
    if (this._defaultCommandGroup && !cmd.helpGroup())
      cmd.helpGroup(this._defaultCommandGroup);
  }

  /**
   * Set the name of the command from script filename, such as process.argv[1],
   * or require.main.filename, or __filename.
   *
   * (Used internally and public although not documented in README.)
   *
   * @example
   * program.nameFromFilename(require.main.filename);
   *
   * @param {string} filename
   * @return {Command}
   */

  nameFromFilename(filename) {
    this._name = path.basename(filename, path.extname(filename));

    return this;
  }

  /**
   * Get or set the directory for searching for executable subcommands of this command.
   *
   * @example
   * program.executableDir(__dirname);
   * // or
   * program.executableDir('subcommands');
   *
   * @param {string} [path]
   * @return {(string|null|Command)}
   */

  executableDir(path) {
    if (path === undefined) return this._executableDir;
    this._executableDir = path;
    return this;
  }

  /**
   * Return program help documentation.
   *
   * @param {{ error: boolean }} [contextOptions] - pass {error:true} to wrap for stderr instead of stdout
   * @return {string}
   */

  helpInformation(contextOptions) {
    const helper = this.createHelp();
    const context = this._getOutputContext(contextOptions);
    helper.prepareContext({
      error: context.error,
      helpWidth: context.helpWidth,
      outputHasColors: context.hasColors,
    });
    const text = helper.formatHelp(this, helper);
    if (context.hasColors) return text;
    return this._outputConfiguration.stripColor(text);
  }

  /**
   * @typedef HelpContext
   * @type {object}
   * @property {boolean} error
   * @property {number} helpWidth
   * @property {boolean} hasColors
   * @property {function} write - includes stripColor if needed
   *
   * @returns {HelpContext}
   * @private
   */

  _getOutputContext(contextOptions) {
    contextOptions = contextOptions || {};
    const error = !!contextOptions.error;
    let baseWrite;
    let hasColors;
    let helpWidth;
    if (error) {
      baseWrite = (str) => this._outputConfiguration.writeErr(str);
      hasColors = this._outputConfiguration.getErrHasColors();
      helpWidth = this._outputConfiguration.getErrHelpWidth();
    } else {
      baseWrite = (str) => this._outputConfiguration.writeOut(str);
      hasColors = this._outputConfiguration.getOutHasColors();
      helpWidth = this._outputConfiguration.getOutHelpWidth();
    }
    const write = (str) => {
      if (!hasColors) str = this._outputConfiguration.stripColor(str);
      return baseWrite(str);
    };
    return { error, write, hasColors, helpWidth };
  }

  /**
   * Output help information for this command.
   *
   * Outputs built-in help, and custom text added using `.addHelpText()`.
   *
   * @param {{ error: boolean } | Function} [contextOptions] - pass {error:true} to write to stderr instead of stdout
   */

  outputHelp(contextOptions) {
    let deprecatedCallback;
    if (typeof contextOptions === 'function') {
      deprecatedCallback = contextOptions;
      contextOptions = undefined;
    }

    const outputContext = this._getOutputContext(contextOptions);
    /** @type {HelpTextEventContext} */
    const eventContext = {
      error: outputContext.error,
      write: outputContext.write,
      command: this,
    };

    this._getCommandAndAncestors()
      .reverse()
      .forEach((command) => command.emit('beforeAllHelp', eventContext));
    this.emit('beforeHelp', eventContext);

    let helpInformation = this.helpInformation({ error: outputContext.error });
    if (deprecatedCallback) {
      helpInformation = deprecatedCallback(helpInformation);
      if (
        typeof helpInformation !== 'string' &&
        !Buffer.isBuffer(helpInformation)
      ) {
        throw new Error('outputHelp callback must return a string or a Buffer');
      }
    }
    outputContext.write(helpInformation);

    if (this._getHelpOption()?.long) {
      this.emit(this._getHelpOption().long); // deprecated
    }
    this.emit('afterHelp', eventContext);
    this._getCommandAndAncestors().forEach((command) =>
      command.emit('afterAllHelp', eventContext),
    );
  }

  /**
   * You can pass in flags and a description to customise the built-in help option.
   * Pass in false to disable the built-in help option.
   *
   * @example
   * program.helpOption('-?, --help' 'show help'); // customise
   * program.helpOption(false); // disable
   *
   * @param {(string | boolean)} flags
   * @param {string} [description]
   * @return {Command} `this` command for chaining
   */

  helpOption(flags, description) {
    // Support enabling/disabling built-in help option.
    if (typeof flags === 'boolean') {
      if (flags) {
        if (this._helpOption === null) this._helpOption = undefined; // reenable
        if (this._defaultOptionGroup) {
          // make the option to store the group
          this._initOptionGroup(this._getHelpOption());
        }
      } else {
        this._helpOption = null; // disable
      }
      return this;
    }

    // Customise flags and description.
    this._helpOption = this.createOption(
      flags ?? '-h, --help',
      description ?? 'display help for command',
    );
    // init group unless lazy create
    if (flags || description) this._initOptionGroup(this._helpOption);

    return this;
  }

  /**
   * Lazy create help option.
   * Returns null if has been disabled with .helpOption(false).
   *
   * @returns {(Option | null)} the help option
   * @package
   */
  _getHelpOption() {
    // Lazy create help option on demand.
    if (this._helpOption === undefined) {
      this.helpOption(undefined, undefined);
    }
    return this._helpOption;
  }

  /**
   * Supply your own option to use for the built-in help option.
   * This is an alternative to using helpOption() to customise the flags and description etc.
   *
   * @param {Option} option
   * @return {Command} `this` command for chaining
   */
  addHelpOption(option) {
    this._helpOption = option;
    this._initOptionGroup(option);
    return this;
  }

  /**
   * Output help information and exit.
   *
   * Outputs built-in help, and custom text added using `.addHelpText()`.
   *
   * @param {{ error: boolean }} [contextOptions] - pass {error:true} to write to stderr instead of stdout
   */

  help(contextOptions) {
    this.outputHelp(contextOptions);
    let exitCode = Number(process.exitCode ?? 0); // process.exitCode does allow a string or an integer, but we prefer just a number
    if (
      exitCode === 0 &&
      contextOptions &&
      typeof contextOptions !== 'function' &&
      contextOptions.error
    ) {
      exitCode = 1;
    }
    // message: do not have all displayed text available so only passing placeholder.
    this._exit(exitCode, 'commander.help', '(outputHelp)');
  }

  /**
   * // Do a little typing to coordinate emit and listener for the help text events.
   * @typedef HelpTextEventContext
   * @type {object}
   * @property {boolean} error
   * @property {Command} command
   * @property {function} write
   */

  /**
   * Add additional text to be displayed with the built-in help.
   *
   * Position is 'before' or 'after' to affect just this command,
   * and 'beforeAll' or 'afterAll' to affect this command and all its subcommands.
   *
   * @param {string} position - before or after built-in help
   * @param {(string | Function)} text - string to add, or a function returning a string
   * @return {Command} `this` command for chaining
   */

  addHelpText(position, text) {
    const allowedValues = ['beforeAll', 'before', 'after', 'afterAll'];
    if (!allowedValues.includes(position)) {
      throw new Error(`Unexpected value for position to addHelpText.
Expecting one of '${allowedValues.join("', '")}'`);
    }

    const helpEvent = `${position}Help`;
    this.on(helpEvent, (/** @type {HelpTextEventContext} */ context) => {
      let helpStr;
      if (typeof text === 'function') {
        helpStr = text({ error: context.error, command: context.command });
      } else {
        helpStr = text;
      }
      // Ignore falsy value when nothing to output.
      if (helpStr) {
        context.write(`${helpStr}\n`);
      }
    });
    return this;
  }

  /**
   * Output help information if help flags specified
   *
   * @param {Array} args - array of options to search for help flags
   * @private
   */

  _outputHelpIfRequested(args) {
    const helpOption = this._getHelpOption();
    const helpRequested = helpOption && args.find((arg) => helpOption.is(arg));
    if (helpRequested) {
      this.outputHelp();
      // (Do not have all displayed text available so only passing placeholder.)
      this._exit(0, 'commander.helpDisplayed', '(outputHelp)');
    }
  }
}

/**
 * Scan arguments and increment port number for inspect calls (to avoid conflicts when spawning new command).
 *
 * @param {string[]} args - array of arguments from node.execArgv
 * @returns {string[]}
 * @private
 */

function incrementNodeInspectorPort(args) {
  // Testing for these options:
  //  --inspect[=[host:]port]
  //  --inspect-brk[=[host:]port]
  //  --inspect-port=[host:]port
  return args.map((arg) => {
    if (!arg.startsWith('--inspect')) {
      return arg;
    }
    let debugOption;
    let debugHost = '127.0.0.1';
    let debugPort = '9229';
    let match;
    if ((match = arg.match(/^(--inspect(-brk)?)$/)) !== null) {
      // e.g. --inspect
      debugOption = match[1];
    } else if (
      (match = arg.match(/^(--inspect(-brk|-port)?)=([^:]+)$/)) !== null
    ) {
      debugOption = match[1];
      if (/^\d+$/.test(match[3])) {
        // e.g. --inspect=1234
        debugPort = match[3];
      } else {
        // e.g. --inspect=localhost
        debugHost = match[3];
      }
    } else if (
      (match = arg.match(/^(--inspect(-brk|-port)?)=([^:]+):(\d+)$/)) !== null
    ) {
      // e.g. --inspect=localhost:1234
      debugOption = match[1];
      debugHost = match[3];
      debugPort = match[4];
    }

    if (debugOption && debugPort !== '0') {
      return `${debugOption}=${debugHost}:${parseInt(debugPort) + 1}`;
    }
    return arg;
  });
}

/**
 * @returns {boolean | undefined}
 * @package
 */
function useColor() {
  // Test for common conventions.
  // NB: the observed behaviour is in combination with how author adds color! For example:
  //   - we do not test NODE_DISABLE_COLORS, but util:styletext does
  //   - we do test NO_COLOR, but Chalk does not
  //
  // References:
  // https://no-color.org
  // https://bixense.com/clicolors/
  // https://github.com/nodejs/node/blob/0a00217a5f67ef4a22384cfc80eb6dd9a917fdc1/lib/internal/tty.js#L109
  // https://github.com/chalk/supports-color/blob/c214314a14bcb174b12b3014b2b0a8de375029ae/index.js#L33
  // (https://force-color.org recent web page from 2023, does not match major javascript implementations)

  if (
    process.env.NO_COLOR ||
    process.env.FORCE_COLOR === '0' ||
    process.env.FORCE_COLOR === 'false'
  )
    return false;
  if (process.env.FORCE_COLOR || process.env.CLICOLOR_FORCE !== undefined)
    return true;
  return undefined;
}

exports.Command = Command;
exports.useColor = useColor; // exporting for tests


/***/ }),

/***/ 135:
/***/ ((__unused_webpack_module, exports) => {

/**
 * CommanderError class
 */
class CommanderError extends Error {
  /**
   * Constructs the CommanderError class
   * @param {number} exitCode suggested exit code which could be used with process.exit
   * @param {string} code an id string representing the error
   * @param {string} message human-readable description of the error
   */
  constructor(exitCode, code, message) {
    super(message);
    // properly capture stack trace in Node.js
    Error.captureStackTrace(this, this.constructor);
    this.name = this.constructor.name;
    this.code = code;
    this.exitCode = exitCode;
    this.nestedError = undefined;
  }
}

/**
 * InvalidArgumentError class
 */
class InvalidArgumentError extends CommanderError {
  /**
   * Constructs the InvalidArgumentError class
   * @param {string} [message] explanation of why argument is invalid
   */
  constructor(message) {
    super(1, 'commander.invalidArgument', message);
    // properly capture stack trace in Node.js
    Error.captureStackTrace(this, this.constructor);
    this.name = this.constructor.name;
  }
}

exports.CommanderError = CommanderError;
exports.InvalidArgumentError = InvalidArgumentError;


/***/ }),

/***/ 754:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const { humanReadableArgName } = __nccwpck_require__(154);

/**
 * TypeScript import types for JSDoc, used by Visual Studio Code IntelliSense and `npm run typescript-checkJS`
 * https://www.typescriptlang.org/docs/handbook/jsdoc-supported-types.html#import-types
 * @typedef { import("./argument.js").Argument } Argument
 * @typedef { import("./command.js").Command } Command
 * @typedef { import("./option.js").Option } Option
 */

// Although this is a class, methods are static in style to allow override using subclass or just functions.
class Help {
  constructor() {
    this.helpWidth = undefined;
    this.minWidthToWrap = 40;
    this.sortSubcommands = false;
    this.sortOptions = false;
    this.showGlobalOptions = false;
  }

  /**
   * prepareContext is called by Commander after applying overrides from `Command.configureHelp()`
   * and just before calling `formatHelp()`.
   *
   * Commander just uses the helpWidth and the rest is provided for optional use by more complex subclasses.
   *
   * @param {{ error?: boolean, helpWidth?: number, outputHasColors?: boolean }} contextOptions
   */
  prepareContext(contextOptions) {
    this.helpWidth = this.helpWidth ?? contextOptions.helpWidth ?? 80;
  }

  /**
   * Get an array of the visible subcommands. Includes a placeholder for the implicit help command, if there is one.
   *
   * @param {Command} cmd
   * @returns {Command[]}
   */

  visibleCommands(cmd) {
    const visibleCommands = cmd.commands.filter((cmd) => !cmd._hidden);
    const helpCommand = cmd._getHelpCommand();
    if (helpCommand && !helpCommand._hidden) {
      visibleCommands.push(helpCommand);
    }
    if (this.sortSubcommands) {
      visibleCommands.sort((a, b) => {
        // @ts-ignore: because overloaded return type
        return a.name().localeCompare(b.name());
      });
    }
    return visibleCommands;
  }

  /**
   * Compare options for sort.
   *
   * @param {Option} a
   * @param {Option} b
   * @returns {number}
   */
  compareOptions(a, b) {
    const getSortKey = (option) => {
      // WYSIWYG for order displayed in help. Short used for comparison if present. No special handling for negated.
      return option.short
        ? option.short.replace(/^-/, '')
        : option.long.replace(/^--/, '');
    };
    return getSortKey(a).localeCompare(getSortKey(b));
  }

  /**
   * Get an array of the visible options. Includes a placeholder for the implicit help option, if there is one.
   *
   * @param {Command} cmd
   * @returns {Option[]}
   */

  visibleOptions(cmd) {
    const visibleOptions = cmd.options.filter((option) => !option.hidden);
    // Built-in help option.
    const helpOption = cmd._getHelpOption();
    if (helpOption && !helpOption.hidden) {
      // Automatically hide conflicting flags. Bit dubious but a historical behaviour that is convenient for single-command programs.
      const removeShort = helpOption.short && cmd._findOption(helpOption.short);
      const removeLong = helpOption.long && cmd._findOption(helpOption.long);
      if (!removeShort && !removeLong) {
        visibleOptions.push(helpOption); // no changes needed
      } else if (helpOption.long && !removeLong) {
        visibleOptions.push(
          cmd.createOption(helpOption.long, helpOption.description),
        );
      } else if (helpOption.short && !removeShort) {
        visibleOptions.push(
          cmd.createOption(helpOption.short, helpOption.description),
        );
      }
    }
    if (this.sortOptions) {
      visibleOptions.sort(this.compareOptions);
    }
    return visibleOptions;
  }

  /**
   * Get an array of the visible global options. (Not including help.)
   *
   * @param {Command} cmd
   * @returns {Option[]}
   */

  visibleGlobalOptions(cmd) {
    if (!this.showGlobalOptions) return [];

    const globalOptions = [];
    for (
      let ancestorCmd = cmd.parent;
      ancestorCmd;
      ancestorCmd = ancestorCmd.parent
    ) {
      const visibleOptions = ancestorCmd.options.filter(
        (option) => !option.hidden,
      );
      globalOptions.push(...visibleOptions);
    }
    if (this.sortOptions) {
      globalOptions.sort(this.compareOptions);
    }
    return globalOptions;
  }

  /**
   * Get an array of the arguments if any have a description.
   *
   * @param {Command} cmd
   * @returns {Argument[]}
   */

  visibleArguments(cmd) {
    // Side effect! Apply the legacy descriptions before the arguments are displayed.
    if (cmd._argsDescription) {
      cmd.registeredArguments.forEach((argument) => {
        argument.description =
          argument.description || cmd._argsDescription[argument.name()] || '';
      });
    }

    // If there are any arguments with a description then return all the arguments.
    if (cmd.registeredArguments.find((argument) => argument.description)) {
      return cmd.registeredArguments;
    }
    return [];
  }

  /**
   * Get the command term to show in the list of subcommands.
   *
   * @param {Command} cmd
   * @returns {string}
   */

  subcommandTerm(cmd) {
    // Legacy. Ignores custom usage string, and nested commands.
    const args = cmd.registeredArguments
      .map((arg) => humanReadableArgName(arg))
      .join(' ');
    return (
      cmd._name +
      (cmd._aliases[0] ? '|' + cmd._aliases[0] : '') +
      (cmd.options.length ? ' [options]' : '') + // simplistic check for non-help option
      (args ? ' ' + args : '')
    );
  }

  /**
   * Get the option term to show in the list of options.
   *
   * @param {Option} option
   * @returns {string}
   */

  optionTerm(option) {
    return option.flags;
  }

  /**
   * Get the argument term to show in the list of arguments.
   *
   * @param {Argument} argument
   * @returns {string}
   */

  argumentTerm(argument) {
    return argument.name();
  }

  /**
   * Get the longest command term length.
   *
   * @param {Command} cmd
   * @param {Help} helper
   * @returns {number}
   */

  longestSubcommandTermLength(cmd, helper) {
    return helper.visibleCommands(cmd).reduce((max, command) => {
      return Math.max(
        max,
        this.displayWidth(
          helper.styleSubcommandTerm(helper.subcommandTerm(command)),
        ),
      );
    }, 0);
  }

  /**
   * Get the longest option term length.
   *
   * @param {Command} cmd
   * @param {Help} helper
   * @returns {number}
   */

  longestOptionTermLength(cmd, helper) {
    return helper.visibleOptions(cmd).reduce((max, option) => {
      return Math.max(
        max,
        this.displayWidth(helper.styleOptionTerm(helper.optionTerm(option))),
      );
    }, 0);
  }

  /**
   * Get the longest global option term length.
   *
   * @param {Command} cmd
   * @param {Help} helper
   * @returns {number}
   */

  longestGlobalOptionTermLength(cmd, helper) {
    return helper.visibleGlobalOptions(cmd).reduce((max, option) => {
      return Math.max(
        max,
        this.displayWidth(helper.styleOptionTerm(helper.optionTerm(option))),
      );
    }, 0);
  }

  /**
   * Get the longest argument term length.
   *
   * @param {Command} cmd
   * @param {Help} helper
   * @returns {number}
   */

  longestArgumentTermLength(cmd, helper) {
    return helper.visibleArguments(cmd).reduce((max, argument) => {
      return Math.max(
        max,
        this.displayWidth(
          helper.styleArgumentTerm(helper.argumentTerm(argument)),
        ),
      );
    }, 0);
  }

  /**
   * Get the command usage to be displayed at the top of the built-in help.
   *
   * @param {Command} cmd
   * @returns {string}
   */

  commandUsage(cmd) {
    // Usage
    let cmdName = cmd._name;
    if (cmd._aliases[0]) {
      cmdName = cmdName + '|' + cmd._aliases[0];
    }
    let ancestorCmdNames = '';
    for (
      let ancestorCmd = cmd.parent;
      ancestorCmd;
      ancestorCmd = ancestorCmd.parent
    ) {
      ancestorCmdNames = ancestorCmd.name() + ' ' + ancestorCmdNames;
    }
    return ancestorCmdNames + cmdName + ' ' + cmd.usage();
  }

  /**
   * Get the description for the command.
   *
   * @param {Command} cmd
   * @returns {string}
   */

  commandDescription(cmd) {
    // @ts-ignore: because overloaded return type
    return cmd.description();
  }

  /**
   * Get the subcommand summary to show in the list of subcommands.
   * (Fallback to description for backwards compatibility.)
   *
   * @param {Command} cmd
   * @returns {string}
   */

  subcommandDescription(cmd) {
    // @ts-ignore: because overloaded return type
    return cmd.summary() || cmd.description();
  }

  /**
   * Get the option description to show in the list of options.
   *
   * @param {Option} option
   * @return {string}
   */

  optionDescription(option) {
    const extraInfo = [];

    if (option.argChoices) {
      extraInfo.push(
        // use stringify to match the display of the default value
        `choices: ${option.argChoices.map((choice) => JSON.stringify(choice)).join(', ')}`,
      );
    }
    if (option.defaultValue !== undefined) {
      // default for boolean and negated more for programmer than end user,
      // but show true/false for boolean option as may be for hand-rolled env or config processing.
      const showDefault =
        option.required ||
        option.optional ||
        (option.isBoolean() && typeof option.defaultValue === 'boolean');
      if (showDefault) {
        extraInfo.push(
          `default: ${option.defaultValueDescription || JSON.stringify(option.defaultValue)}`,
        );
      }
    }
    // preset for boolean and negated are more for programmer than end user
    if (option.presetArg !== undefined && option.optional) {
      extraInfo.push(`preset: ${JSON.stringify(option.presetArg)}`);
    }
    if (option.envVar !== undefined) {
      extraInfo.push(`env: ${option.envVar}`);
    }
    if (extraInfo.length > 0) {
      const extraDescription = `(${extraInfo.join(', ')})`;
      if (option.description) {
        return `${option.description} ${extraDescription}`;
      }
      return extraDescription;
    }

    return option.description;
  }

  /**
   * Get the argument description to show in the list of arguments.
   *
   * @param {Argument} argument
   * @return {string}
   */

  argumentDescription(argument) {
    const extraInfo = [];
    if (argument.argChoices) {
      extraInfo.push(
        // use stringify to match the display of the default value
        `choices: ${argument.argChoices.map((choice) => JSON.stringify(choice)).join(', ')}`,
      );
    }
    if (argument.defaultValue !== undefined) {
      extraInfo.push(
        `default: ${argument.defaultValueDescription || JSON.stringify(argument.defaultValue)}`,
      );
    }
    if (extraInfo.length > 0) {
      const extraDescription = `(${extraInfo.join(', ')})`;
      if (argument.description) {
        return `${argument.description} ${extraDescription}`;
      }
      return extraDescription;
    }
    return argument.description;
  }

  /**
   * Format a list of items, given a heading and an array of formatted items.
   *
   * @param {string} heading
   * @param {string[]} items
   * @param {Help} helper
   * @returns string[]
   */
  formatItemList(heading, items, helper) {
    if (items.length === 0) return [];

    return [helper.styleTitle(heading), ...items, ''];
  }

  /**
   * Group items by their help group heading.
   *
   * @param {Command[] | Option[]} unsortedItems
   * @param {Command[] | Option[]} visibleItems
   * @param {Function} getGroup
   * @returns {Map<string, Command[] | Option[]>}
   */
  groupItems(unsortedItems, visibleItems, getGroup) {
    const result = new Map();
    // Add groups in order of appearance in unsortedItems.
    unsortedItems.forEach((item) => {
      const group = getGroup(item);
      if (!result.has(group)) result.set(group, []);
    });
    // Add items in order of appearance in visibleItems.
    visibleItems.forEach((item) => {
      const group = getGroup(item);
      if (!result.has(group)) {
        result.set(group, []);
      }
      result.get(group).push(item);
    });
    return result;
  }

  /**
   * Generate the built-in help text.
   *
   * @param {Command} cmd
   * @param {Help} helper
   * @returns {string}
   */

  formatHelp(cmd, helper) {
    const termWidth = helper.padWidth(cmd, helper);
    const helpWidth = helper.helpWidth ?? 80; // in case prepareContext() was not called

    function callFormatItem(term, description) {
      return helper.formatItem(term, termWidth, description, helper);
    }

    // Usage
    let output = [
      `${helper.styleTitle('Usage:')} ${helper.styleUsage(helper.commandUsage(cmd))}`,
      '',
    ];

    // Description
    const commandDescription = helper.commandDescription(cmd);
    if (commandDescription.length > 0) {
      output = output.concat([
        helper.boxWrap(
          helper.styleCommandDescription(commandDescription),
          helpWidth,
        ),
        '',
      ]);
    }

    // Arguments
    const argumentList = helper.visibleArguments(cmd).map((argument) => {
      return callFormatItem(
        helper.styleArgumentTerm(helper.argumentTerm(argument)),
        helper.styleArgumentDescription(helper.argumentDescription(argument)),
      );
    });
    output = output.concat(
      this.formatItemList('Arguments:', argumentList, helper),
    );

    // Options
    const optionGroups = this.groupItems(
      cmd.options,
      helper.visibleOptions(cmd),
      (option) => option.helpGroupHeading ?? 'Options:',
    );
    optionGroups.forEach((options, group) => {
      const optionList = options.map((option) => {
        return callFormatItem(
          helper.styleOptionTerm(helper.optionTerm(option)),
          helper.styleOptionDescription(helper.optionDescription(option)),
        );
      });
      output = output.concat(this.formatItemList(group, optionList, helper));
    });

    if (helper.showGlobalOptions) {
      const globalOptionList = helper
        .visibleGlobalOptions(cmd)
        .map((option) => {
          return callFormatItem(
            helper.styleOptionTerm(helper.optionTerm(option)),
            helper.styleOptionDescription(helper.optionDescription(option)),
          );
        });
      output = output.concat(
        this.formatItemList('Global Options:', globalOptionList, helper),
      );
    }

    // Commands
    const commandGroups = this.groupItems(
      cmd.commands,
      helper.visibleCommands(cmd),
      (sub) => sub.helpGroup() || 'Commands:',
    );
    commandGroups.forEach((commands, group) => {
      const commandList = commands.map((sub) => {
        return callFormatItem(
          helper.styleSubcommandTerm(helper.subcommandTerm(sub)),
          helper.styleSubcommandDescription(helper.subcommandDescription(sub)),
        );
      });
      output = output.concat(this.formatItemList(group, commandList, helper));
    });

    return output.join('\n');
  }

  /**
   * Return display width of string, ignoring ANSI escape sequences. Used in padding and wrapping calculations.
   *
   * @param {string} str
   * @returns {number}
   */
  displayWidth(str) {
    return stripColor(str).length;
  }

  /**
   * Style the title for displaying in the help. Called with 'Usage:', 'Options:', etc.
   *
   * @param {string} str
   * @returns {string}
   */
  styleTitle(str) {
    return str;
  }

  styleUsage(str) {
    // Usage has lots of parts the user might like to color separately! Assume default usage string which is formed like:
    //    command subcommand [options] [command] <foo> [bar]
    return str
      .split(' ')
      .map((word) => {
        if (word === '[options]') return this.styleOptionText(word);
        if (word === '[command]') return this.styleSubcommandText(word);
        if (word[0] === '[' || word[0] === '<')
          return this.styleArgumentText(word);
        return this.styleCommandText(word); // Restrict to initial words?
      })
      .join(' ');
  }
  styleCommandDescription(str) {
    return this.styleDescriptionText(str);
  }
  styleOptionDescription(str) {
    return this.styleDescriptionText(str);
  }
  styleSubcommandDescription(str) {
    return this.styleDescriptionText(str);
  }
  styleArgumentDescription(str) {
    return this.styleDescriptionText(str);
  }
  styleDescriptionText(str) {
    return str;
  }
  styleOptionTerm(str) {
    return this.styleOptionText(str);
  }
  styleSubcommandTerm(str) {
    // This is very like usage with lots of parts! Assume default string which is formed like:
    //    subcommand [options] <foo> [bar]
    return str
      .split(' ')
      .map((word) => {
        if (word === '[options]') return this.styleOptionText(word);
        if (word[0] === '[' || word[0] === '<')
          return this.styleArgumentText(word);
        return this.styleSubcommandText(word); // Restrict to initial words?
      })
      .join(' ');
  }
  styleArgumentTerm(str) {
    return this.styleArgumentText(str);
  }
  styleOptionText(str) {
    return str;
  }
  styleArgumentText(str) {
    return str;
  }
  styleSubcommandText(str) {
    return str;
  }
  styleCommandText(str) {
    return str;
  }

  /**
   * Calculate the pad width from the maximum term length.
   *
   * @param {Command} cmd
   * @param {Help} helper
   * @returns {number}
   */

  padWidth(cmd, helper) {
    return Math.max(
      helper.longestOptionTermLength(cmd, helper),
      helper.longestGlobalOptionTermLength(cmd, helper),
      helper.longestSubcommandTermLength(cmd, helper),
      helper.longestArgumentTermLength(cmd, helper),
    );
  }

  /**
   * Detect manually wrapped and indented strings by checking for line break followed by whitespace.
   *
   * @param {string} str
   * @returns {boolean}
   */
  preformatted(str) {
    return /\n[^\S\r\n]/.test(str);
  }

  /**
   * Format the "item", which consists of a term and description. Pad the term and wrap the description, indenting the following lines.
   *
   * So "TTT", 5, "DDD DDDD DD DDD" might be formatted for this.helpWidth=17 like so:
   *   TTT  DDD DDDD
   *        DD DDD
   *
   * @param {string} term
   * @param {number} termWidth
   * @param {string} description
   * @param {Help} helper
   * @returns {string}
   */
  formatItem(term, termWidth, description, helper) {
    const itemIndent = 2;
    const itemIndentStr = ' '.repeat(itemIndent);
    if (!description) return itemIndentStr + term;

    // Pad the term out to a consistent width, so descriptions are aligned.
    const paddedTerm = term.padEnd(
      termWidth + term.length - helper.displayWidth(term),
    );

    // Format the description.
    const spacerWidth = 2; // between term and description
    const helpWidth = this.helpWidth ?? 80; // in case prepareContext() was not called
    const remainingWidth = helpWidth - termWidth - spacerWidth - itemIndent;
    let formattedDescription;
    if (
      remainingWidth < this.minWidthToWrap ||
      helper.preformatted(description)
    ) {
      formattedDescription = description;
    } else {
      const wrappedDescription = helper.boxWrap(description, remainingWidth);
      formattedDescription = wrappedDescription.replace(
        /\n/g,
        '\n' + ' '.repeat(termWidth + spacerWidth),
      );
    }

    // Construct and overall indent.
    return (
      itemIndentStr +
      paddedTerm +
      ' '.repeat(spacerWidth) +
      formattedDescription.replace(/\n/g, `\n${itemIndentStr}`)
    );
  }

  /**
   * Wrap a string at whitespace, preserving existing line breaks.
   * Wrapping is skipped if the width is less than `minWidthToWrap`.
   *
   * @param {string} str
   * @param {number} width
   * @returns {string}
   */
  boxWrap(str, width) {
    if (width < this.minWidthToWrap) return str;

    const rawLines = str.split(/\r\n|\n/);
    // split up text by whitespace
    const chunkPattern = /[\s]*[^\s]+/g;
    const wrappedLines = [];
    rawLines.forEach((line) => {
      const chunks = line.match(chunkPattern);
      if (chunks === null) {
        wrappedLines.push('');
        return;
      }

      let sumChunks = [chunks.shift()];
      let sumWidth = this.displayWidth(sumChunks[0]);
      chunks.forEach((chunk) => {
        const visibleWidth = this.displayWidth(chunk);
        // Accumulate chunks while they fit into width.
        if (sumWidth + visibleWidth <= width) {
          sumChunks.push(chunk);
          sumWidth += visibleWidth;
          return;
        }
        wrappedLines.push(sumChunks.join(''));

        const nextChunk = chunk.trimStart(); // trim space at line break
        sumChunks = [nextChunk];
        sumWidth = this.displayWidth(nextChunk);
      });
      wrappedLines.push(sumChunks.join(''));
    });

    return wrappedLines.join('\n');
  }
}

/**
 * Strip style ANSI escape sequences from the string. In particular, SGR (Select Graphic Rendition) codes.
 *
 * @param {string} str
 * @returns {string}
 * @package
 */

function stripColor(str) {
  // eslint-disable-next-line no-control-regex
  const sgrPattern = /\x1b\[\d*(;\d*)*m/g;
  return str.replace(sgrPattern, '');
}

exports.Help = Help;
exports.stripColor = stripColor;


/***/ }),

/***/ 240:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const { InvalidArgumentError } = __nccwpck_require__(135);

class Option {
  /**
   * Initialize a new `Option` with the given `flags` and `description`.
   *
   * @param {string} flags
   * @param {string} [description]
   */

  constructor(flags, description) {
    this.flags = flags;
    this.description = description || '';

    this.required = flags.includes('<'); // A value must be supplied when the option is specified.
    this.optional = flags.includes('['); // A value is optional when the option is specified.
    // variadic test ignores <value,...> et al which might be used to describe custom splitting of single argument
    this.variadic = /\w\.\.\.[>\]]$/.test(flags); // The option can take multiple values.
    this.mandatory = false; // The option must have a value after parsing, which usually means it must be specified on command line.
    const optionFlags = splitOptionFlags(flags);
    this.short = optionFlags.shortFlag; // May be a short flag, undefined, or even a long flag (if option has two long flags).
    this.long = optionFlags.longFlag;
    this.negate = false;
    if (this.long) {
      this.negate = this.long.startsWith('--no-');
    }
    this.defaultValue = undefined;
    this.defaultValueDescription = undefined;
    this.presetArg = undefined;
    this.envVar = undefined;
    this.parseArg = undefined;
    this.hidden = false;
    this.argChoices = undefined;
    this.conflictsWith = [];
    this.implied = undefined;
    this.helpGroupHeading = undefined; // soft initialised when option added to command
  }

  /**
   * Set the default value, and optionally supply the description to be displayed in the help.
   *
   * @param {*} value
   * @param {string} [description]
   * @return {Option}
   */

  default(value, description) {
    this.defaultValue = value;
    this.defaultValueDescription = description;
    return this;
  }

  /**
   * Preset to use when option used without option-argument, especially optional but also boolean and negated.
   * The custom processing (parseArg) is called.
   *
   * @example
   * new Option('--color').default('GREYSCALE').preset('RGB');
   * new Option('--donate [amount]').preset('20').argParser(parseFloat);
   *
   * @param {*} arg
   * @return {Option}
   */

  preset(arg) {
    this.presetArg = arg;
    return this;
  }

  /**
   * Add option name(s) that conflict with this option.
   * An error will be displayed if conflicting options are found during parsing.
   *
   * @example
   * new Option('--rgb').conflicts('cmyk');
   * new Option('--js').conflicts(['ts', 'jsx']);
   *
   * @param {(string | string[])} names
   * @return {Option}
   */

  conflicts(names) {
    this.conflictsWith = this.conflictsWith.concat(names);
    return this;
  }

  /**
   * Specify implied option values for when this option is set and the implied options are not.
   *
   * The custom processing (parseArg) is not called on the implied values.
   *
   * @example
   * program
   *   .addOption(new Option('--log', 'write logging information to file'))
   *   .addOption(new Option('--trace', 'log extra details').implies({ log: 'trace.txt' }));
   *
   * @param {object} impliedOptionValues
   * @return {Option}
   */
  implies(impliedOptionValues) {
    let newImplied = impliedOptionValues;
    if (typeof impliedOptionValues === 'string') {
      // string is not documented, but easy mistake and we can do what user probably intended.
      newImplied = { [impliedOptionValues]: true };
    }
    this.implied = Object.assign(this.implied || {}, newImplied);
    return this;
  }

  /**
   * Set environment variable to check for option value.
   *
   * An environment variable is only used if when processed the current option value is
   * undefined, or the source of the current value is 'default' or 'config' or 'env'.
   *
   * @param {string} name
   * @return {Option}
   */

  env(name) {
    this.envVar = name;
    return this;
  }

  /**
   * Set the custom handler for processing CLI option arguments into option values.
   *
   * @param {Function} [fn]
   * @return {Option}
   */

  argParser(fn) {
    this.parseArg = fn;
    return this;
  }

  /**
   * Whether the option is mandatory and must have a value after parsing.
   *
   * @param {boolean} [mandatory=true]
   * @return {Option}
   */

  makeOptionMandatory(mandatory = true) {
    this.mandatory = !!mandatory;
    return this;
  }

  /**
   * Hide option in help.
   *
   * @param {boolean} [hide=true]
   * @return {Option}
   */

  hideHelp(hide = true) {
    this.hidden = !!hide;
    return this;
  }

  /**
   * @package
   */

  _collectValue(value, previous) {
    if (previous === this.defaultValue || !Array.isArray(previous)) {
      return [value];
    }

    previous.push(value);
    return previous;
  }

  /**
   * Only allow option value to be one of choices.
   *
   * @param {string[]} values
   * @return {Option}
   */

  choices(values) {
    this.argChoices = values.slice();
    this.parseArg = (arg, previous) => {
      if (!this.argChoices.includes(arg)) {
        throw new InvalidArgumentError(
          `Allowed choices are ${this.argChoices.join(', ')}.`,
        );
      }
      if (this.variadic) {
        return this._collectValue(arg, previous);
      }
      return arg;
    };
    return this;
  }

  /**
   * Return option name.
   *
   * @return {string}
   */

  name() {
    if (this.long) {
      return this.long.replace(/^--/, '');
    }
    return this.short.replace(/^-/, '');
  }

  /**
   * Return option name, in a camelcase format that can be used
   * as an object attribute key.
   *
   * @return {string}
   */

  attributeName() {
    if (this.negate) {
      return camelcase(this.name().replace(/^no-/, ''));
    }
    return camelcase(this.name());
  }

  /**
   * Set the help group heading.
   *
   * @param {string} heading
   * @return {Option}
   */
  helpGroup(heading) {
    this.helpGroupHeading = heading;
    return this;
  }

  /**
   * Check if `arg` matches the short or long flag.
   *
   * @param {string} arg
   * @return {boolean}
   * @package
   */

  is(arg) {
    return this.short === arg || this.long === arg;
  }

  /**
   * Return whether a boolean option.
   *
   * Options are one of boolean, negated, required argument, or optional argument.
   *
   * @return {boolean}
   * @package
   */

  isBoolean() {
    return !this.required && !this.optional && !this.negate;
  }
}

/**
 * This class is to make it easier to work with dual options, without changing the existing
 * implementation. We support separate dual options for separate positive and negative options,
 * like `--build` and `--no-build`, which share a single option value. This works nicely for some
 * use cases, but is tricky for others where we want separate behaviours despite
 * the single shared option value.
 */
class DualOptions {
  /**
   * @param {Option[]} options
   */
  constructor(options) {
    this.positiveOptions = new Map();
    this.negativeOptions = new Map();
    this.dualOptions = new Set();
    options.forEach((option) => {
      if (option.negate) {
        this.negativeOptions.set(option.attributeName(), option);
      } else {
        this.positiveOptions.set(option.attributeName(), option);
      }
    });
    this.negativeOptions.forEach((value, key) => {
      if (this.positiveOptions.has(key)) {
        this.dualOptions.add(key);
      }
    });
  }

  /**
   * Did the value come from the option, and not from possible matching dual option?
   *
   * @param {*} value
   * @param {Option} option
   * @returns {boolean}
   */
  valueFromOption(value, option) {
    const optionKey = option.attributeName();
    if (!this.dualOptions.has(optionKey)) return true;

    // Use the value to deduce if (probably) came from the option.
    const preset = this.negativeOptions.get(optionKey).presetArg;
    const negativeValue = preset !== undefined ? preset : false;
    return option.negate === (negativeValue === value);
  }
}

/**
 * Convert string from kebab-case to camelCase.
 *
 * @param {string} str
 * @return {string}
 * @private
 */

function camelcase(str) {
  return str.split('-').reduce((str, word) => {
    return str + word[0].toUpperCase() + word.slice(1);
  });
}

/**
 * Split the short and long flag out of something like '-m,--mixed <value>'
 *
 * @private
 */

function splitOptionFlags(flags) {
  let shortFlag;
  let longFlag;
  // short flag, single dash and single character
  const shortFlagExp = /^-[^-]$/;
  // long flag, double dash and at least one character
  const longFlagExp = /^--[^-]/;

  const flagParts = flags.split(/[ |,]+/).concat('guard');
  // Normal is short and/or long.
  if (shortFlagExp.test(flagParts[0])) shortFlag = flagParts.shift();
  if (longFlagExp.test(flagParts[0])) longFlag = flagParts.shift();
  // Long then short. Rarely used but fine.
  if (!shortFlag && shortFlagExp.test(flagParts[0]))
    shortFlag = flagParts.shift();
  // Allow two long flags, like '--ws, --workspace'
  // This is the supported way to have a shortish option flag.
  if (!shortFlag && longFlagExp.test(flagParts[0])) {
    shortFlag = longFlag;
    longFlag = flagParts.shift();
  }

  // Check for unprocessed flag. Fail noisily rather than silently ignore.
  if (flagParts[0].startsWith('-')) {
    const unsupportedFlag = flagParts[0];
    const baseError = `option creation failed due to '${unsupportedFlag}' in option flags '${flags}'`;
    if (/^-[^-][^-]/.test(unsupportedFlag))
      throw new Error(
        `${baseError}
- a short flag is a single dash and a single character
  - either use a single dash and a single character (for a short flag)
  - or use a double dash for a long option (and can have two, like '--ws, --workspace')`,
      );
    if (shortFlagExp.test(unsupportedFlag))
      throw new Error(`${baseError}
- too many short flags`);
    if (longFlagExp.test(unsupportedFlag))
      throw new Error(`${baseError}
- too many long flags`);

    throw new Error(`${baseError}
- unrecognised flag format`);
  }
  if (shortFlag === undefined && longFlag === undefined)
    throw new Error(
      `option creation failed due to no flags found in '${flags}'.`,
    );

  return { shortFlag, longFlag };
}

exports.Option = Option;
exports.DualOptions = DualOptions;


/***/ }),

/***/ 30:
/***/ ((__unused_webpack_module, exports) => {

const maxDistance = 3;

function editDistance(a, b) {
  // https://en.wikipedia.org/wiki/Damerau–Levenshtein_distance
  // Calculating optimal string alignment distance, no substring is edited more than once.
  // (Simple implementation.)

  // Quick early exit, return worst case.
  if (Math.abs(a.length - b.length) > maxDistance)
    return Math.max(a.length, b.length);

  // distance between prefix substrings of a and b
  const d = [];

  // pure deletions turn a into empty string
  for (let i = 0; i <= a.length; i++) {
    d[i] = [i];
  }
  // pure insertions turn empty string into b
  for (let j = 0; j <= b.length; j++) {
    d[0][j] = j;
  }

  // fill matrix
  for (let j = 1; j <= b.length; j++) {
    for (let i = 1; i <= a.length; i++) {
      let cost = 1;
      if (a[i - 1] === b[j - 1]) {
        cost = 0;
      } else {
        cost = 1;
      }
      d[i][j] = Math.min(
        d[i - 1][j] + 1, // deletion
        d[i][j - 1] + 1, // insertion
        d[i - 1][j - 1] + cost, // substitution
      );
      // transposition
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }

  return d[a.length][b.length];
}

/**
 * Find close matches, restricted to same number of edits.
 *
 * @param {string} word
 * @param {string[]} candidates
 * @returns {string}
 */

function suggestSimilar(word, candidates) {
  if (!candidates || candidates.length === 0) return '';
  // remove possible duplicates
  candidates = Array.from(new Set(candidates));

  const searchingOptions = word.startsWith('--');
  if (searchingOptions) {
    word = word.slice(2);
    candidates = candidates.map((candidate) => candidate.slice(2));
  }

  let similar = [];
  let bestDistance = maxDistance;
  const minSimilarity = 0.4;
  candidates.forEach((candidate) => {
    if (candidate.length <= 1) return; // no one character guesses

    const distance = editDistance(word, candidate);
    const length = Math.max(word.length, candidate.length);
    const similarity = (length - distance) / length;
    if (similarity > minSimilarity) {
      if (distance < bestDistance) {
        // better edit distance, throw away previous worse matches
        bestDistance = distance;
        similar = [candidate];
      } else if (distance === bestDistance) {
        similar.push(candidate);
      }
    }
  });

  similar.sort((a, b) => a.localeCompare(b));
  if (searchingOptions) {
    similar = similar.map((candidate) => `--${candidate}`);
  }

  if (similar.length > 1) {
    return `\n(Did you mean one of ${similar.join(', ')}?)`;
  }
  if (similar.length === 1) {
    return `\n(Did you mean ${similar[0]}?)`;
  }
  return '';
}

exports.suggestSimilar = suggestSimilar;


/***/ }),

/***/ 708:
/***/ ((__webpack_module__, __unused_webpack___webpack_exports__, __nccwpck_require__) => {

__nccwpck_require__.a(__webpack_module__, async (__webpack_handle_async_dependencies__, __webpack_async_result__) => { try {
/* harmony import */ var _main_js__WEBPACK_IMPORTED_MODULE_0__ = __nccwpck_require__(728);

process.exitCode = await (0,_main_js__WEBPACK_IMPORTED_MODULE_0__/* .main */ .iW)();
//# sourceMappingURL=index.js.map
__webpack_async_result__();
} catch(e) { __webpack_async_result__(e); } }, 1);

/***/ }),

/***/ 728:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __nccwpck_require__) => {


// EXPORTS
__nccwpck_require__.d(__webpack_exports__, {
  iW: () => (/* binding */ main)
});

// UNUSED EXPORTS: EXIT_BUILD_FAILED, EXIT_OK, EXIT_USAGE

// EXTERNAL MODULE: ./node_modules/commander/index.js
var commander = __nccwpck_require__(909);
;// CONCATENATED MODULE: ./node_modules/commander/esm.mjs


// wrapper to provide named exports for ESM.
const {
  /* program */ "DM": program,
  /* createCommand */ "gu": createCommand,
  /* createArgument */ "er": createArgument,
  /* createOption */ "Ww": createOption,
  /* CommanderError */ "b7": CommanderError,
  /* InvalidArgumentError */ "Di": InvalidArgumentError,
  /* InvalidOptionArgumentError */ "a2": InvalidOptionArgumentError, // deprecated old name
  /* Command */ "uB": Command,
  /* Argument */ "ef": Argument,
  /* Option */ "c$": Option,
  /* Help */ "_V": Help,
} = commander;

// EXTERNAL MODULE: external "node:path"
var external_node_path_ = __nccwpck_require__(760);
// EXTERNAL MODULE: external "node:fs"
var external_node_fs_ = __nccwpck_require__(24);
;// CONCATENATED MODULE: external "node:os"
const external_node_os_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:os");
;// CONCATENATED MODULE: external "node:url"
const external_node_url_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:url");
;// CONCATENATED MODULE: ./build/src/config/configparser.js
/**
 * INI reading with the exact semantics of Python 3.11's
 * `configparser.ConfigParser(interpolation=ExtendedInterpolation())` and
 * default options, so that files written for the original image-factory mean
 * the same here. test/unit/configparser-differential.test.ts checks this
 * against python3 itself; where Python behaves oddly, so does this module.
 */
class ConfigError extends Error {
    /** The name of the exception Python's configparser raises in the same case. */
    kind;
    file;
    line;
    section;
    option;
    constructor(kind, message, where = {}) {
        super(message);
        this.name = 'ConfigError';
        this.kind = kind;
        this.file = where.file;
        this.line = where.line;
        this.section = where.section;
        this.option = where.option;
    }
}
const DEFAULT_SECTION = 'DEFAULT';
/** configparser.MAX_INTERPOLATION_DEPTH */
const MAX_INTERPOLATION_DEPTH = 10;
/** RawConfigParser.BOOLEAN_STATES */
const BOOLEAN_STATES = new Map([
    ['1', true],
    ['yes', true],
    ['true', true],
    ['on', true],
    ['0', false],
    ['no', false],
    ['false', false],
    ['off', false],
]);
const BOOLEAN_WORDS = '1, yes, true, on (true) or 0, no, false, off (false), in any case';
/** Python's getboolean(): the value itself is not stripped. */
function parseBoolean(value) {
    return BOOLEAN_STATES.get(value.toLowerCase());
}
// Python's str.strip() and regex \s use str.isspace(), which differs from
// JavaScript's \s and trim(): it includes \x1c-\x1f and \x85, and not \ufeff.
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const LEADING_SPACE = new RegExp(`^[${PY_SPACE}]+`);
const TRAILING_SPACE = new RegExp(`[${PY_SPACE}]+$`);
const NON_SPACE = new RegExp(`[^${PY_SPACE}]`);
function pyStrip(text) {
    return pyRstrip(text.replace(LEADING_SPACE, ''));
}
function pyRstrip(text) {
    return text.replace(TRAILING_SPACE, '');
}
/** optionxform: keys are case-insensitive, section names are not. */
function optionxform(key) {
    return key.toLowerCase();
}
// SECTCRE is matched at the start only: what follows the last `]` on the
// line is ignored, and `[a]b]` names the section `a]b`.
const SECTION_HEADER = /^\[(.+)\]/s;
// OPTCRE: the first `=` or `:` splits, spaces around it are dropped.
const OPTION_LINE = new RegExp(`^(.*?)[${PY_SPACE}]*(=|:)[${PY_SPACE}]*(.*)$`, 's');
const COMMENT_PREFIXES = ['#', ';'];
// ExtendedInterpolation._KEYCRE; `[^}]` also matches newlines, as in Python.
const REFERENCE = /^\$\{([^}]+)\}/;
const REFERENCE_GLOBAL = /\$\{[^}]+\}/g;
const SYNTAX_HELP = "Write ${key} for a key of the same section or [DEFAULT], ${section:key} for another section's key, and $$ for a literal $.";
function quote(text) {
    return `'${text.replace(/\n/g, '\\n')}'`;
}
function at(origin) {
    return origin ? `${origin.file}:${origin.line}: ` : '';
}
function sameReference(a, b) {
    return a.section === b.section && a.option === b.option;
}
class ConfigParser {
    defaultTable = new Map();
    sectionTables = new Map();
    /**
     * Parse one file's text (RawConfigParser._read) and merge it into what was
     * read before. `source` names the file in errors. Unlike Python, a file
     * that fails leaves the parser unchanged.
     */
    read(text, source) {
        const defaults = new Map(this.defaultTable);
        const sections = new Map();
        for (const [name, table] of this.sectionTables)
            sections.set(name, new Map(table));
        // A byte order mark is not text; Node's readFileSync keeps it, Python's utf-8-sig drops it.
        const body = text.startsWith('\ufeff') ? text.slice(1) : text;
        // Python reads files with universal newlines.
        const lines = body.replace(/\r\n?/g, '\n').split('\n');
        if (lines.length > 1 && lines[lines.length - 1] === '')
            lines.pop();
        // strict=True: what this file added, to reject duplicates within it.
        const sectionsAdded = new Map();
        const optionsAdded = new Map();
        const pending = [];
        const badLines = [];
        let current;
        let sectionName = '';
        // The value that indented lines continue; Python's `optname`.
        let continued;
        let indentLevel = 0;
        lines.forEach((line, index) => {
            const lineNumber = index + 1;
            const stripped = pyStrip(line);
            const isComment = COMMENT_PREFIXES.some((prefix) => stripped.startsWith(prefix));
            if (isComment || stripped === '') {
                // empty_lines_in_values: a blank (not comment) line belongs to the
                // value; trailing ones are dropped when the lines are joined.
                if (!isComment && current && continued)
                    continued.push('');
                return;
            }
            const firstNonSpace = NON_SPACE.exec(line);
            const indent = firstNonSpace ? firstNonSpace.index : 0;
            if (current && continued && indent > indentLevel) {
                continued.push(stripped);
                return;
            }
            indentLevel = indent;
            const header = SECTION_HEADER.exec(stripped);
            if (header) {
                const name = header[1];
                const existing = sections.get(name);
                if (existing) {
                    const first = sectionsAdded.get(name);
                    if (first !== undefined) {
                        throw new ConfigError('DuplicateSectionError', `${source}:${lineNumber}: section [${name}] appears twice in this file (first on line ${first}); ` +
                            'merge the two, or move one into a later file to override the earlier one.', { file: source, line: lineNumber, section: name });
                    }
                    current = existing;
                    sectionsAdded.set(name, lineNumber);
                }
                else if (name === DEFAULT_SECTION) {
                    // A second [DEFAULT] in one file is allowed; its keys still may not repeat.
                    current = defaults;
                }
                else {
                    current = new Map();
                    sections.set(name, current);
                    sectionsAdded.set(name, lineNumber);
                }
                sectionName = name;
                continued = undefined;
                return;
            }
            if (!current) {
                throw new ConfigError('MissingSectionHeaderError', `${source}:${lineNumber}: ${quote(stripped)} comes before any [section] header; ` +
                    'every key must be inside a section (keys under [DEFAULT] apply to all sections).', { file: source, line: lineNumber });
            }
            const option = OPTION_LINE.exec(stripped);
            if (!option) {
                // Python reports all such lines at the end of the file, unless
                // another error stops it first.
                badLines.push({
                    line: lineNumber,
                    text: stripped,
                    reason: "expected 'key = value', 'key: value', a [section] header, or a comment line starting with # or ;",
                });
                return;
            }
            const name = optionxform(pyRstrip(option[1]));
            if (name === '') {
                // Python records the error but still stores the value under ''.
                badLines.push({ line: lineNumber, text: stripped, reason: `the key is missing before '${option[2]}'` });
            }
            const addedKey = JSON.stringify([sectionName, name]);
            const first = optionsAdded.get(addedKey);
            if (first !== undefined) {
                throw new ConfigError('DuplicateOptionError', `${source}:${lineNumber}: duplicate key '${name}' in section [${sectionName}] (first set on line ${first}); ` +
                    'keys are case-insensitive, and a key may be set once per section in a file (a later file may override it).', { file: source, line: lineNumber, section: sectionName, option: name });
            }
            optionsAdded.set(addedKey, lineNumber);
            const entry = { value: '', origin: { file: source, line: lineNumber } };
            const parts = [pyStrip(option[3])];
            current.set(name, entry);
            pending.push({ entry, parts });
            // An empty key name (Python's falsy optname) takes no continuation lines.
            continued = name === '' ? undefined : parts;
        });
        for (const { entry, parts } of pending)
            entry.value = pyRstrip(parts.join('\n'));
        if (badLines.length > 0) {
            const first = badLines[0];
            const message = badLines.map((bad) => `${source}:${bad.line}: cannot read ${quote(bad.text)}: ${bad.reason}`).join('\n');
            throw new ConfigError('ParsingError', message, { file: source, line: first.line });
        }
        this.defaultTable = defaults;
        this.sectionTables = sections;
    }
    /** Section names in first-seen order, without DEFAULT. */
    sections() {
        return [...this.sectionTables.keys()];
    }
    hasSection(name) {
        return this.sectionTables.has(name);
    }
    /** True when the key is in the section or in [DEFAULT]; '' means DEFAULT, as in Python. */
    hasOption(section, key) {
        const name = optionxform(key);
        if (section === '' || section === DEFAULT_SECTION)
            return this.defaultTable.has(name);
        const table = this.sectionTables.get(section);
        if (!table)
            return false;
        return table.has(name) || this.defaultTable.has(name);
    }
    addSection(name) {
        if (name === DEFAULT_SECTION) {
            throw new ConfigError('ValueError', `[${DEFAULT_SECTION}] always exists and cannot be added as a section.`, {
                section: name,
            });
        }
        if (this.sectionTables.has(name)) {
            throw new ConfigError('DuplicateSectionError', `section [${name}] already exists.`, { section: name });
        }
        this.sectionTables.set(name, new Map());
    }
    /**
     * Set a raw value, interpolated like any other when read. The section must
     * exist, except DEFAULT (or ''). The value is checked for `$` syntax first,
     * as Python does, and is stored as given (not stripped).
     */
    set(section, key, value) {
        if (value !== '') {
            const leftover = value.replaceAll('$$', '').replace(REFERENCE_GLOBAL, '');
            if (leftover.includes('$')) {
                throw new ConfigError('ValueError', `cannot set [${section}] ${key} to ${quote(value)}: a '$' is not followed by '$' or '{...}'. ${SYNTAX_HELP}`, { section, option: optionxform(key) });
            }
        }
        let table;
        if (section === '' || section === DEFAULT_SECTION) {
            table = this.defaultTable;
        }
        else {
            const found = this.sectionTables.get(section);
            if (!found)
                throw this.noSection(section);
            table = found;
        }
        table.set(optionxform(key), { value });
    }
    /** The interpolated value; throws NoSectionError, NoOptionError or an interpolation error. */
    get(section, key) {
        const map = this.lookupTable(section);
        if (!map)
            throw this.noSection(section);
        const option = optionxform(key);
        const stored = map.get(option);
        if (!stored) {
            const where = section === DEFAULT_SECTION ? `[${DEFAULT_SECTION}]` : `section [${section}] (nor in [${DEFAULT_SECTION}])`;
            throw new ConfigError('NoOptionError', `no key '${option}' in ${where}.`, { section, option });
        }
        return this.interpolate(section, option, stored.value, map);
    }
    /** The value as written (no interpolation), or undefined when absent. */
    getRaw(section, key) {
        return this.lookupTable(section)?.get(optionxform(key))?.value;
    }
    /** A boolean value; `fallback` applies only when the section or key is absent. */
    getBoolean(section, key, fallback) {
        let value;
        try {
            value = this.get(section, key);
        }
        catch (error) {
            const absent = error instanceof ConfigError && (error.kind === 'NoSectionError' || error.kind === 'NoOptionError');
            if (absent && fallback !== undefined)
                return fallback;
            throw error;
        }
        const result = parseBoolean(value);
        if (result === undefined) {
            const origin = this.origin(section, key);
            throw new ConfigError('ValueError', `${at(origin)}in section [${section}], key '${optionxform(key)}': ${quote(value)} is not a boolean; use ${BOOLEAN_WORDS}.`, { file: origin?.file, line: origin?.line, section, option: optionxform(key) });
        }
        return result;
    }
    /**
     * items(section): [DEFAULT]'s keys first, then the section's own, each
     * interpolated. A key in both keeps DEFAULT's position and the section's value.
     */
    items(section) {
        return Object.fromEntries(this.itemEntries(section));
    }
    /** items() as pairs: keeps Python's order even for keys like '10' that objects reorder. */
    itemEntries(section) {
        const map = this.lookupTable(section);
        if (!map)
            throw this.noSection(section);
        return [...map].map(([option, stored]) => [option, this.interpolate(section, option, stored.value, map)]);
    }
    /** Where the effective raw value was read; undefined for values given to set(). */
    origin(section, key) {
        return this.lookupTable(section)?.get(optionxform(key))?.origin;
    }
    /** The raw [DEFAULT] values. */
    defaults() {
        return Object.fromEntries([...this.defaultTable].map(([key, stored]) => [key, stored.value]));
    }
    /** A section merged over [DEFAULT] (Python's items()/_unify_values), or undefined when it does not exist. */
    lookupTable(section) {
        if (section === DEFAULT_SECTION)
            return this.defaultTable;
        const table = this.sectionTables.get(section);
        if (!table)
            return undefined;
        const merged = new Map(this.defaultTable);
        for (const [key, stored] of table)
            merged.set(key, stored);
        return merged;
    }
    noSection(section) {
        const known = this.sections();
        const list = known.length > 0 ? `; the sections are ${known.map((name) => `[${name}]`).join(', ')}` : '; there are none';
        return new ConfigError('NoSectionError', `there is no section [${section}]${list}.`, { section });
    }
    interpolate(section, option, value, map) {
        const accum = [];
        this.expand({ section, option }, value, map, 1, accum, []);
        return accum.join('');
    }
    /** ExtendedInterpolation._interpolate_some, step for step, so that errors come in the same order. */
    expand(here, value, map, depth, accum, chain) {
        const path = [...chain, here];
        if (depth > MAX_INTERPOLATION_DEPTH)
            throw this.depthError(path);
        let rest = value;
        while (rest !== '') {
            const p = rest.indexOf('$');
            if (p < 0) {
                accum.push(rest);
                return;
            }
            if (p > 0) {
                accum.push(rest.slice(0, p));
                rest = rest.slice(p);
            }
            const next = rest.slice(1, 2);
            if (next === '$') {
                accum.push('$');
                rest = rest.slice(2);
                continue;
            }
            if (next !== '{') {
                throw this.syntaxError(path, map, `a '$' must be followed by '$' or '{', found ${quote(rest)}`);
            }
            const match = REFERENCE.exec(rest);
            if (!match)
                throw this.syntaxError(path, map, `${quote(rest)} starts a reference that is empty or has no closing '}'`);
            rest = rest.slice(match[0].length);
            const parts = match[1].split(':');
            if (parts.length > 2)
                throw this.syntaxError(path, map, `more than one ':' in ${quote(match[0])}`);
            const target = parts.length === 1
                ? { section: here.section, option: optionxform(parts[0]) }
                : { section: parts[0], option: optionxform(parts[1]) };
            const targetMap = parts.length === 1 ? map : this.lookupTable(target.section);
            const found = targetMap?.get(target.option);
            if (!targetMap || !found)
                throw this.missingError(path, map, match[1], target);
            if (found.value.includes('$')) {
                this.expand(target, found.value, targetMap, depth + 1, accum, path);
            }
            else {
                accum.push(found.value);
            }
        }
    }
    /** "file:line: in section [S], key 'k'" for the value being expanded. */
    describe(here, map) {
        const stored = map.get(here.option);
        const inherited = here.section !== DEFAULT_SECTION && !this.sectionTables.get(here.section)?.has(here.option) && stored !== undefined;
        const prefix = `${at(stored?.origin)}in section [${here.section}], key '${here.option}'` +
            `${inherited ? ` (from [${DEFAULT_SECTION}])` : ''}: ${quote(stored?.value ?? '')}`;
        return {
            prefix,
            where: { file: stored?.origin?.file, line: stored?.origin?.line, section: here.section, option: here.option },
        };
    }
    reachedFrom(path) {
        if (path.length < 2)
            return '';
        return ` (reached from ${path
            .slice(0, -1)
            .map((step) => `[${step.section}] ${step.option}`)
            .join(' → ')})`;
    }
    missingError(path, map, reference, target) {
        const here = path[path.length - 1];
        const { prefix, where } = this.describe(here, map);
        let problem;
        if (target.section !== DEFAULT_SECTION && !this.sectionTables.has(target.section)) {
            problem = `, but there is no section [${target.section}]`;
        }
        else if (target.section === DEFAULT_SECTION) {
            problem = `, but '${target.option}' is not set in [${DEFAULT_SECTION}]`;
        }
        else {
            const key = reference.includes(':') ? `, but '${target.option}'` : ', which';
            problem = `${key} is set in neither [${target.section}] nor [${DEFAULT_SECTION}]`;
        }
        return new ConfigError('InterpolationMissingOptionError', `${prefix} refers to '${reference}'${problem}${this.reachedFrom(path)}.`, where);
    }
    syntaxError(path, map, problem) {
        const { prefix, where } = this.describe(path[path.length - 1], map);
        return new ConfigError('InterpolationSyntaxError', `${prefix}: ${problem}${this.reachedFrom(path)}. ${SYNTAX_HELP}`, where);
    }
    depthError(path) {
        // Name the loop when there is one, from the first key that comes back:
        // that is what the user has to fix.
        let loop = path;
        for (let i = 0; i < path.length && loop === path; i += 1) {
            const again = path.findIndex((step, j) => j > i && sameReference(step, path[i]));
            if (again > 0)
                loop = path.slice(i, again + 1);
        }
        const steps = loop.map((step) => `[${step.section}] ${step.option}`).join(' → ');
        const first = loop[0];
        const origin = this.lookupTable(first.section)?.get(first.option)?.origin;
        const problem = loop !== path
            ? `key '${first.option}' in section [${first.section}] refers back to itself: ${steps}`
            : `references nest more than ${MAX_INTERPOLATION_DEPTH} levels deep: ${steps}`;
        return new ConfigError('InterpolationDepthError', `${at(origin)}${problem}.`, {
            file: origin?.file,
            line: origin?.line,
            section: first.section,
            option: first.option,
        });
    }
}
//# sourceMappingURL=configparser.js.map
;// CONCATENATED MODULE: ./build/src/config/usage-error.js
/**
 * Bad input: a configuration, option or environment problem found before
 * anything was created. Front doors turn it into exit code 2.
 */
class UsageError extends Error {
    constructor(message) {
        super(message);
        this.name = 'UsageError';
    }
}
//# sourceMappingURL=usage-error.js.map
;// CONCATENATED MODULE: ./build/src/config/config-files.js






const CONFIG_ENV = 'IMAGE_FACTORY_CONFIG';
const SYSTEM_CONFIG = '/etc/image-factory.conf';
/**
 * The folder of shipped image definitions. The code runs from build/, from a
 * dist/ bundle or from an installed package, so look upwards for data/.
 */
function shippedDataDir() {
    let dir = (0,external_node_path_.dirname)((0,external_node_url_namespaceObject.fileURLToPath)(import.meta.url));
    for (;;) {
        if ((0,external_node_fs_.existsSync)((0,external_node_path_.join)(dir, 'data', 'image-factory.conf')))
            return (0,external_node_path_.join)(dir, 'data');
        const parent = (0,external_node_path_.dirname)(dir);
        if (parent === dir)
            throw new Error('the shipped data/image-factory.conf was not found next to the program');
        dir = parent;
    }
}
/**
 * The files read, in order (a later one wins): the shipped definitions,
 * /etc/image-factory.conf, ~/.config/image-factory.conf — or, as in the
 * original, only the file that IMAGE_FACTORY_CONFIG names.
 */
function configFiles(search = {}) {
    const env = search.env ?? process.env;
    const named = env[CONFIG_ENV];
    if (named !== undefined) {
        if (!isReadableFile(named)) {
            throw new UsageError(`'${named}' (set in ${CONFIG_ENV}) is not a readable file.`);
        }
        return [(0,external_node_path_.resolve)(named), ...(search.extraFiles ?? [])];
    }
    const home = search.home ?? (0,external_node_os_namespaceObject.homedir)();
    const files = [(0,external_node_path_.join)(shippedDataDir(), 'image-factory.conf'), SYSTEM_CONFIG, (0,external_node_path_.join)(home, '.config', 'image-factory.conf')];
    return [...files.filter(isReadableFile), ...(search.extraFiles ?? [])];
}
/** Read the configuration files into one parser; `data_dir` defaults to the shipped folder. */
function loadConfig(search = {}) {
    const files = configFiles(search);
    const config = new ConfigParser();
    config.set('DEFAULT', 'data_dir', shippedDataDir());
    for (const file of files) {
        let text;
        try {
            text = (0,external_node_fs_.readFileSync)(file, 'utf8');
        }
        catch (error) {
            throw new UsageError(`cannot read configuration file ${file}: ${error.message}`);
        }
        try {
            config.read(text, file);
        }
        catch (error) {
            if (error instanceof ConfigError)
                throw new UsageError(error.message);
            throw error;
        }
    }
    return { config, files };
}
function isReadableFile(path) {
    try {
        if (!(0,external_node_fs_.statSync)(path).isFile())
            return false;
        (0,external_node_fs_.readFileSync)(path, { flag: 'r' }).subarray(0, 0);
        return true;
    }
    catch {
        return false;
    }
}
//# sourceMappingURL=config-files.js.map
;// CONCATENATED MODULE: ./build/src/config/units.js
const BINARY = { KiB: 1, MiB: 2, GiB: 3, TiB: 4, PiB: 5, EiB: 6 };
const SI = { B: 0, kB: 1, MB: 2, GB: 3, TB: 4, PB: 5, EB: 6 };
const LEGACY = { K: 1, M: 2, G: 3, T: 4, P: 5, E: 6 };
const SIZE_FORMS = "a whole number with a unit: binary '512 MiB', '4 GiB', SI '2 GB', or legacy '2G' (= 2 GiB)";
/**
 * Parse a size the way image-factory does: SI prefixes (kB, MB, GB…), binary
 * prefixes (KiB, MiB, GiB…) and, for backward compatibility, K/M/G meaning
 * KiB/MiB/GiB. Returns undefined for anything else.
 */
function parseBytes(text) {
    const match = /^([0-9]+)\s*([kMGTPE]?B|[KMGTPE]iB|[KMGTPE])$/.exec(text.trim());
    if (!match)
        return undefined;
    const value = BigInt(match[1]);
    const unit = match[2];
    let bytes;
    if (unit in BINARY)
        bytes = value << BigInt(10 * BINARY[unit]);
    else if (unit in SI)
        bytes = value * 10n ** BigInt(3 * SI[unit]);
    else
        bytes = value << BigInt(10 * LEGACY[unit]);
    return bytes > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(bytes);
}
const DURATION_FORMS = "seconds ('900'), or a number with s, m or h ('90m', '3h', '1h30m')";
/** Parse '3h', '90m', '45s', '1h30m' or plain seconds into milliseconds. */
function parseDuration(text) {
    const trimmed = text.trim();
    if (/^[0-9]+$/.test(trimmed))
        return Number(trimmed) * 1000;
    const match = /^(?:([0-9]+)\s*h)?\s*(?:([0-9]+)\s*m)?\s*(?:([0-9]+)\s*s)?$/.exec(trimmed);
    if (!match || trimmed === '' || !(match[1] || match[2] || match[3]))
        return undefined;
    const [h, m, s] = [match[1], match[2], match[3]].map((part) => Number(part ?? 0));
    return ((h * 60 + m) * 60 + s) * 1000;
}
function formatBytes(bytes) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
        value /= 1024;
        unit += 1;
    }
    return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}
function formatDuration(ms) {
    const seconds = Math.round(ms / 1000);
    if (seconds < 60)
        return `${(ms / 1000).toFixed(1)} s`;
    const m = Math.floor(seconds / 60);
    const s = seconds % 60;
    if (m < 60)
        return `${m}m${String(s).padStart(2, '0')}s`;
    return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
//# sourceMappingURL=units.js.map
;// CONCATENATED MODULE: ./build/src/config/image-spec.js






const DEFAULT_IMAGE_SIZE = '2G';
const DEFAULT_RAM = '1G';
const DEFAULT_INSTALL_TIMEOUT = '3h';
const DEFAULT_OSINFO = 'linux2022';
const DEFAULT_BOOT_TIMEOUT = '10m';
/** getty's prompt, e.g. `debian login:`. */
const DEFAULT_BOOT_EXPECT = '\\blogin: *$';
/** The build date as the original writes it in file names: YYYY-MM-DD, local time. */
function localDate(date = new Date()) {
    const pad = (n) => String(n).padStart(2, '0');
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}
function defaultCacheDir(uid = process.getuid?.() ?? 0) {
    return uid === 0 ? '/var/cache/image-factory' : '~/.cache/image-factory';
}
/**
 * Apply overrides the way the original does: written into the image's
 * section (booleans as Python's str(bool)), and cache_dir set when unset.
 * Returns false when the image has no section.
 */
function applyOverrides(config, image, overrides) {
    const existed = config.hasSection(image);
    if (!existed)
        config.addSection(image);
    for (const [key, value] of Object.entries(overrides)) {
        if (value === undefined)
            continue;
        config.set(image, key, typeof value === 'boolean' ? (value ? 'True' : 'False') : value);
    }
    if (!config.hasOption(image, 'cache_dir'))
        config.set(image, 'cache_dir', defaultCacheDir());
    try {
        config.set(image, 'cache_dir', expandHome(config.get(image, 'cache_dir')));
    }
    catch (error) {
        if (error instanceof ConfigError)
            throw new UsageError(error.message);
        throw error;
    }
    return existed;
}
/** The resolved options of an image: configparser's items(section). */
function resolvedOptions(config, image) {
    try {
        return config.items(image);
    }
    catch (error) {
        if (error instanceof ConfigError)
            throw new UsageError(error.message);
        throw error;
    }
}
/** Turn an image's section into a validated ImageSpec, or throw UsageError saying what is wrong. */
function resolveImageSpec(config, image, context) {
    if (!context.hadSection) {
        const known = context.knownImages.length ? context.knownImages.join(', ') : '(none)';
        throw new UsageError(`No section '${image}' defined in the configuration. Images that exist: ${known}.`);
    }
    const options = resolvedOptions(config, image);
    const where = (key) => {
        const origin = config.origin(image, key);
        return origin ? `${origin.file}:${origin.line}: ` : '';
    };
    const problem = (key, message) => new UsageError(`${where(key)}[${image}] ${key}: ${message}`);
    const sizeOf = (key, fallback) => {
        const text = options[key] ?? fallback;
        const bytes = parseBytes(text);
        if (bytes === undefined || bytes === 0)
            throw problem(key, `'${text}' is not a size; use ${SIZE_FORMS}.`);
        return bytes;
    };
    const booleanOf = (key, fallback) => {
        const text = options[key];
        if (text === undefined)
            return fallback;
        const value = parseBoolean(text);
        if (value === undefined)
            throw problem(key, `'${text}' is not a boolean; use 1/yes/true/on or 0/no/false/off.`);
        return value;
    };
    const choiceOf = (key, choices, fallback) => {
        const text = (options[key] ?? fallback).trim();
        if (!choices.includes(text)) {
            throw problem(key, `'${text}' is not one of ${choices.join(', ')}.`);
        }
        return text;
    };
    const format = choiceOf('format', ['raw', 'qcow2'], 'raw');
    const imageSize = sizeOf('image-size', DEFAULT_IMAGE_SIZE);
    const ramMiB = Math.floor(sizeOf('ram', DEFAULT_RAM) / 1024 / 1024);
    if (ramMiB < 128)
        throw problem('ram', `${options.ram} is less than the 128 MiB an installer needs.`);
    const coresText = options.cores ?? '1';
    if (!/^[1-9][0-9]*$/.test(coresText.trim()))
        throw problem('cores', `'${coresText}' is not a whole number of CPU cores (1 or more).`);
    const installer = resolveInstaller(options, problem);
    const answerFile = resolveAnswerFile(options, problem);
    const answerDelivery = choiceOf('answer-delivery', ['inject', 'http'], 'inject');
    let mac;
    if (options.mac !== undefined && options.mac.trim() !== '') {
        mac = options.mac.trim().toLowerCase();
        if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac)) {
            throw problem('mac', `'${options.mac}' is not a MAC address; use six hex pairs like 52:54:00:12:34:56.`);
        }
        if ((parseInt(mac.slice(0, 2), 16) & 1) === 1) {
            throw problem('mac', `'${options.mac}' is a multicast address; a network card needs a unicast one (first byte even, e.g. 52:54:00:…).`);
        }
    }
    let vnc;
    if (options.vnc !== undefined && options.vnc.trim() !== '') {
        const match = /^([^:]*):([0-9]+)$/.exec(options.vnc.trim());
        const display = match ? Number(match[2]) : NaN;
        if (!match || display > 65535 - 5900) {
            throw problem('vnc', `'${options.vnc}' is not a VNC display; use LISTEN:DISPLAY such as localhost:1 (port 5901) or :1.`);
        }
        vnc = { listen: match[1], port: 5900 + display };
    }
    const timeoutText = options['install-timeout'] ?? DEFAULT_INSTALL_TIMEOUT;
    const installTimeoutMs = parseDuration(timeoutText);
    if (installTimeoutMs === undefined || installTimeoutMs === 0) {
        throw problem('install-timeout', `'${timeoutText}' is not a duration; use ${DURATION_FORMS}.`);
    }
    const osinfo = (options.osinfo ?? DEFAULT_OSINFO).trim();
    if (!/^[A-Za-z0-9._-]+$/.test(osinfo)) {
        throw problem('osinfo', `'${osinfo}' is not an OS name; use a short id from 'virt-install --osinfo list' such as debian12 or linux2022.`);
    }
    const cpu = options.cpu?.trim() || undefined;
    if (cpu !== undefined && !/^[A-Za-z0-9=,._-]+$/.test(cpu)) {
        throw problem('cpu', `'${cpu}' is not a virt-install --cpu value such as mode=maximum, host-passthrough or host-model.`);
    }
    const logFile = booleanOf('log-file', false)
        ? (0,external_node_path_.resolve)(context.outputDir, expandHome(options['log-filename'] ?? `${image}-${context.date}.log`))
        : undefined;
    const postBuild = options['post-build-command']?.trim();
    const bootTimeoutText = options['boot-timeout'] ?? DEFAULT_BOOT_TIMEOUT;
    const bootTimeoutMs = parseDuration(bootTimeoutText);
    if (bootTimeoutMs === undefined || bootTimeoutMs === 0) {
        throw problem('boot-timeout', `'${bootTimeoutText}' is not a duration; use ${DURATION_FORMS}.`);
    }
    const expect = options['boot-test-expect'] ?? DEFAULT_BOOT_EXPECT;
    try {
        new RegExp(expect, 'm');
    }
    catch (error) {
        throw problem('boot-test-expect', `'${expect}' is not a regular expression: ${error.message}.`);
    }
    return {
        name: image,
        date: context.date,
        stem: `${image}-${context.date}`,
        outputDir: context.outputDir,
        cacheDir: (0,external_node_path_.join)((0,external_node_path_.resolve)(expandHome(options.cache_dir ?? defaultCacheDir())), image),
        format,
        imageSize,
        ramMiB,
        cores: Number(coresText),
        installer,
        answerFile,
        answerDelivery,
        append: options.append ?? '',
        mac,
        vnc,
        osinfo,
        cpu,
        accelerator: choiceOf('accelerator', ['auto', 'kvm', 'tcg'], 'auto'),
        installTimeoutMs,
        installerLogs: booleanOf('installer-logs', false),
        keepRaw: booleanOf('keep-raw', false),
        logFile,
        zeroFreeSpace: choiceOf('zero-free-space', ['discard', 'zerofree', 'none'], 'discard'),
        compress: choiceOf('compress', ['none', 'zlib', 'zstd'], 'none'),
        upload: context.upload,
        uploads: resolveUploads(config, image, options),
        postBuildCommand: postBuild ? postBuild : undefined,
        bootTest: {
            enabled: booleanOf('boot-test', false),
            timeoutMs: bootTimeoutMs,
            expect,
            cloudInit: booleanOf('boot-test-cloud-init', true),
            ramMiB: Math.max(ramMiB, 512),
        },
    };
}
function resolveInstaller(options, problem) {
    const source = (key) => {
        const uri = options[key].trim();
        const checksumKey = `${key}_sha256`;
        const parsed = parseSource(uri, (message) => problem(key, message));
        const sha = options[checksumKey]?.trim().toLowerCase();
        if (sha !== undefined && sha !== '') {
            if (!/^[0-9a-f]{64}$/.test(sha))
                throw problem(checksumKey, `'${sha}' is not a SHA-256 (64 hex digits).`);
            parsed.sha256 = sha;
        }
        return parsed;
    };
    if (options.installer_image !== undefined && options.installer_image.trim() !== '') {
        return { kind: 'image', image: source('installer_image') };
    }
    const missing = ['linux', 'initrd'].filter((key) => options[key] === undefined || options[key].trim() === '');
    if (missing.length) {
        throw problem(missing[0], `no ${missing.map((k) => `'${k}'`).join(' or ')} set. An image needs 'linux' and 'initrd' (URIs of the netboot kernel and initrd: file:, http:, https:, rsync: or a path) or 'installer_image'.`);
    }
    return { kind: 'netboot', linux: source('linux'), initrd: source('initrd') };
}
/** Parse an installer URI: file:///p, file:/p, a plain path (~ expands, relative to the working folder), http(s):, rsync:. */
function parseSource(uri, fail) {
    const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(uri);
    const scheme = schemeMatch?.[1].toLowerCase();
    if (scheme === undefined) {
        return { uri, display: uri, scheme: 'file', location: (0,external_node_path_.resolve)(expandHome(uri)) };
    }
    if (scheme === 'file') {
        let path = uri.slice('file:'.length);
        if (path.startsWith('//')) {
            const host = path.slice(2).split('/')[0];
            if (host !== '' && host !== 'localhost')
                throw fail(`'${uri}' names host '${host}'; a file: URI must be local (file:///path).`);
            path = path.slice(2 + host.length);
        }
        return { uri, display: uri, scheme: 'file', location: (0,external_node_path_.resolve)(expandHome(decodeURIComponent(path))) };
    }
    if (scheme === 'http' || scheme === 'https' || scheme === 'rsync') {
        let url;
        try {
            url = new URL(uri);
        }
        catch {
            throw fail(`'${redactUri(uri)}' is not a valid URL.`);
        }
        if (!url.hostname)
            throw fail(`'${redactUri(uri)}' has no host.`);
        return { uri, display: redactUri(uri), scheme, location: uri };
    }
    throw fail(`unsupported scheme '${scheme}:' in '${redactUri(uri)}'; use file:, http:, https:, rsync: or a plain path.`);
}
/** Replace the password of user:password@host with ***. */
function redactUri(uri) {
    return uri.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/[^/@:]*:)[^/@]*@/, '$1***@');
}
const ANSWER_KINDS = ['preseed', 'kickstart', 'yast', 'autoinstall'];
function resolveAnswerFile(options, problem) {
    const given = ANSWER_KINDS.filter((kind) => options[kind] !== undefined && options[kind].trim() !== '');
    if (given.length > 1) {
        throw problem(given[1], `only one answer file can be used, but ${given.map((k) => `'${k}'`).join(' and ')} are set.`);
    }
    if (given.length === 0)
        return undefined;
    const kind = given[0];
    const path = (0,external_node_path_.resolve)(expandHome(options[kind].trim()));
    try {
        (0,external_node_fs_.accessSync)(path, external_node_fs_.constants.R_OK);
    }
    catch {
        throw problem(kind, `the answer file '${path}' does not exist or is not readable.`);
    }
    return { kind, path };
}
function resolveUploads(config, image, options) {
    const names = (options.upload_destinations ?? '')
        .split(',')
        .map((name) => name.trim())
        .filter((name) => name !== '');
    const origin = config.origin(image, 'upload_destinations');
    const at = origin ? `${origin.file}:${origin.line}: ` : '';
    return names.map((name) => {
        if (!config.hasSection(name)) {
            throw new UsageError(`${at}[${image}] upload_destinations names '${name}', but there is no section [${name}].`);
        }
        const get = (key) => {
            if (!config.hasOption(name, key))
                return undefined;
            try {
                return config.get(name, key);
            }
            catch (error) {
                if (error instanceof ConfigError)
                    throw new UsageError(error.message);
                throw error;
            }
        };
        const where = (key) => {
            const o = config.origin(name, key);
            return o ? `${o.file}:${o.line}: ` : '';
        };
        const type = get('upload_type')?.trim();
        if (!type)
            throw new UsageError(`[${name}] has no 'upload_type' (the only type is rsync).`);
        if (type.toLowerCase() !== 'rsync') {
            throw new UsageError(`${where('upload_type')}[${name}] upload_type: unknown type '${type}'. Supported types: rsync.`);
        }
        const target = get('upload_target')?.trim();
        if (!target)
            throw new UsageError(`[${name}] has no 'upload_target' (e.g. user@host:/srv/images/ or rsync://host/module/).`);
        const keys = [];
        if (config.hasOption(name, 'post-upload-command'))
            keys.push('post-upload-command');
        for (let i = 1; config.hasOption(name, `post-upload-command${i}`); i += 1)
            keys.push(`post-upload-command${i}`);
        // ${image} names the uploaded file, as in the original: the key is set in the
        // destination's section before the commands are read. Try it now so that a
        // broken command fails before the build rather than after it.
        const postUploadCommands = (imageFile) => {
            config.set(name, 'image', imageFile);
            return keys.map((key) => (get(key) ?? '').split(' ').filter((word) => word.trim() !== ''));
        };
        postUploadCommands('IMAGE');
        return {
            name,
            type: 'rsync',
            target,
            args: (get('upload_args') ?? '').split(' ').filter((arg) => arg.trim() !== ''),
            postUploadCommands,
        };
    });
}
function expandHome(path) {
    if (path === '~')
        return (0,external_node_os_namespaceObject.homedir)();
    if (path.startsWith('~/'))
        return (0,external_node_path_.join)((0,external_node_os_namespaceObject.homedir)(), path.slice(2));
    return path;
}
//# sourceMappingURL=image-spec.js.map
// EXTERNAL MODULE: external "node:child_process"
var external_node_child_process_ = __nccwpck_require__(421);
;// CONCATENATED MODULE: ./build/src/host/command-error.js
/** A command that ran and failed: carries what a user needs to see why. */
class CommandError extends Error {
    argv;
    exitCode;
    signal;
    lastLines;
    constructor(argv, exitCode, signal, lastLines) {
        const how = signal ? `was killed by ${signal}` : `exited with code ${exitCode}`;
        const tail = lastLines.length ? `; its last lines:\n${lastLines.map((l) => `  | ${l}`).join('\n')}` : '';
        super(`'${formatCommand(argv)}' ${how}${tail}`);
        this.argv = argv;
        this.exitCode = exitCode;
        this.signal = signal;
        this.lastLines = lastLines;
        this.name = 'CommandError';
    }
}
/** Quote a command line the way a POSIX shell would accept it back. */
function formatCommand(argv) {
    return argv.map(quoteArgument).join(' ');
}
function quoteArgument(arg) {
    if (arg !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg))
        return arg;
    return `'${arg.replace(/'/g, `'\\''`)}'`;
}
//# sourceMappingURL=command-error.js.map
;// CONCATENATED MODULE: ./build/src/host/exec.js


/**
 * Run one external program. Output is streamed line by line (a `\r` counts as
 * a line end too, so progress meters arrive as they are drawn) and the last
 * lines are kept for the error message.
 */
function runCommand(argv, options = {}) {
    const keep = options.tailLines ?? 20;
    return new Promise((resolve, reject) => {
        if (options.signal?.aborted) {
            reject(abortError(argv));
            return;
        }
        const child = (0,external_node_child_process_.spawn)(argv[0], argv.slice(1), {
            cwd: options.cwd,
            env: options.env ?? process.env,
            stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        });
        const lastLines = [];
        let stdout = '';
        const remember = (line, stream) => {
            if (line.trim() === '')
                return;
            lastLines.push(line);
            if (lastLines.length > keep)
                lastLines.shift();
            options.onLine?.(line, stream);
        };
        const splitter = (stream) => {
            let pending = '';
            return {
                push(chunk) {
                    const text = pending + chunk.toString('utf8');
                    const parts = text.split(/\r\n|\n|\r/);
                    pending = parts.pop() ?? '';
                    for (const part of parts)
                        remember(part, stream);
                },
                end() {
                    if (pending)
                        remember(pending, stream);
                    pending = '';
                },
            };
        };
        const out = splitter('stdout');
        const err = splitter('stderr');
        child.stdout?.on('data', (chunk) => {
            if (options.captureStdout)
                stdout += chunk.toString('utf8');
            else
                out.push(chunk);
        });
        child.stderr?.on('data', (chunk) => err.push(chunk));
        if (options.input !== undefined && child.stdin) {
            child.stdin.end(options.input);
        }
        let killTimer;
        const onAbort = () => {
            child.kill('SIGTERM');
            killTimer = setTimeout(() => child.kill('SIGKILL'), 5000);
            killTimer.unref();
        };
        options.signal?.addEventListener('abort', onAbort, { once: true });
        child.on('error', (error) => {
            options.signal?.removeEventListener('abort', onAbort);
            const why = error.code === 'ENOENT' ? `${argv[0]} is not installed (or not on PATH)` : error.message;
            reject(new CommandError(argv, null, null, [why]));
        });
        child.on('close', (code, signal) => {
            options.signal?.removeEventListener('abort', onAbort);
            if (killTimer)
                clearTimeout(killTimer);
            out.end();
            err.end();
            if (options.signal?.aborted) {
                reject(abortError(argv));
                return;
            }
            const result = { exitCode: code, signal, stdout, lastLines };
            if ((code !== 0 || signal) && !options.allowFailure) {
                reject(new CommandError(argv, code, signal, lastLines));
                return;
            }
            resolve(result);
        });
    });
}
class AbortedError extends Error {
    constructor(message) {
        super(message);
        this.name = 'AbortedError';
    }
}
function abortError(argv) {
    return new AbortedError(`interrupted while running '${formatCommand(argv)}'`);
}
//# sourceMappingURL=exec.js.map
;// CONCATENATED MODULE: external "node:timers/promises"
const promises_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:timers/promises");
;// CONCATENATED MODULE: ./build/src/host/accelerator.js

/**
 * Whether guests can use KVM. The device must exist and be open to the user
 * qemu runs as (for qemu:///system that is libvirt's qemu user, which gets it
 * through the kvm group), and the CPU must expose virtualization: a nested
 * guest without VMX/SVM has a /dev/kvm that cannot run anything.
 */
function kvmStatus(isRoot = (process.getuid?.() ?? 0) === 0, devicePath = '/dev/kvm') {
    let mode;
    try {
        mode = (0,external_node_fs_.statSync)(devicePath).mode;
    }
    catch {
        return { usable: false, reason: `${devicePath} does not exist (no KVM module loaded, or virtualization disabled in the firmware or hypervisor)` };
    }
    if (isRoot) {
        // qemu under qemu:///system is not root: it reaches the device through the kvm group.
        if ((mode & 0o060) !== 0o060 && (mode & 0o006) !== 0o006) {
            return {
                usable: false,
                reason: `${devicePath} is mode ${(mode & 0o777).toString(8)}: libvirt's qemu user cannot open it. Fix: chgrp kvm ${devicePath} && chmod 660 ${devicePath} (or install a udev rule: KERNEL=="kvm", GROUP="kvm", MODE="0660")`,
            };
        }
    }
    else {
        try {
            (0,external_node_fs_.accessSync)(devicePath, external_node_fs_.constants.R_OK | external_node_fs_.constants.W_OK);
        }
        catch {
            return { usable: false, reason: `${devicePath} is not readable and writable for this user. Fix: add the user to the kvm group (usermod -aG kvm USER) and log in again` };
        }
    }
    let cpuinfo = '';
    try {
        cpuinfo = (0,external_node_fs_.readFileSync)('/proc/cpuinfo', 'utf8');
    }
    catch {
        return { usable: true };
    }
    if (!/^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo)) {
        return { usable: false, reason: 'the CPU exposes no VMX/SVM flag (a nested guest without nested virtualization): KVM cannot run guests here' };
    }
    return { usable: true };
}
function chooseAccelerator(wanted, status = kvmStatus()) {
    if (wanted === 'tcg')
        return { accelerator: 'tcg' };
    if (status.usable)
        return { accelerator: 'kvm' };
    if (wanted === 'kvm')
        return { accelerator: 'kvm', error: `accelerator = kvm, but KVM is not usable: ${status.reason}.` };
    return {
        accelerator: 'tcg',
        warning: `KVM is not usable (${status.reason}); installing under TCG software emulation, which is many times slower.`,
    };
}
//# sourceMappingURL=accelerator.js.map
;// CONCATENATED MODULE: ./build/src/host/libvirt.js
/** qemu:///system as root, qemu:///session otherwise, as the original. */
function libvirtUri(host) {
    return host.isRoot ? 'qemu:///system' : 'qemu:///session';
}
/**
 * virt-install 4.0 renamed --os-variant to --osinfo and made it mandatory;
 * older releases only know --os-variant.
 */
async function osinfoFlag(host) {
    const result = await host.run(['virt-install', '--version'], {
        allowFailure: true,
        quiet: true,
        readOnly: true,
        captureStdout: true,
    });
    const major = Number(/^(\d+)\./.exec(result.stdout.trim())?.[1] ?? '4');
    return major >= 4 ? '--osinfo' : '--os-variant';
}
//# sourceMappingURL=libvirt.js.map
;// CONCATENATED MODULE: ./build/src/host/programs.js


/** Everything a build runs. */
const REQUIREMENTS = [
    { programs: ['qemu-img'], packages: { 'apt-get': ['qemu-utils'], dnf: ['qemu-img'] } },
    // RHEL-like systems ship the emulator only as /usr/libexec/qemu-kvm.
    { programs: ['qemu-system-x86_64', '/usr/libexec/qemu-kvm'], packages: { 'apt-get': ['qemu-system-x86'], dnf: ['qemu-kvm'] } },
    { programs: ['virt-install'], packages: { 'apt-get': ['virtinst'], dnf: ['virt-install'] } },
    {
        programs: ['virsh'],
        packages: { 'apt-get': ['libvirt-clients', 'libvirt-daemon-system'], dnf: ['libvirt-client', 'libvirt-daemon-kvm'] },
    },
    // The daemon itself: monolithic libvirtd, or the modular virtqemud of newer Fedora.
    { programs: ['libvirtd', 'virtqemud'], packages: { 'apt-get': ['libvirt-daemon-system'], dnf: ['libvirt-daemon-kvm'] } },
    { programs: ['zerofree'], packages: { 'apt-get': ['zerofree'], dnf: ['zerofree'] } },
    { programs: ['rsync'], packages: { 'apt-get': ['rsync'], dnf: ['rsync'] } },
    { programs: ['sfdisk'], packages: { 'apt-get': ['fdisk'], dnf: ['util-linux'] } },
    { programs: ['losetup', 'blkid', 'fstrim'], packages: { 'apt-get': ['mount', 'util-linux'], dnf: ['util-linux'] } },
    // getfacl/setfacl give qemu passage through private folders (see qemu-access.ts).
    { programs: ['setfacl'], packages: { 'apt-get': ['acl'], dnf: ['acl'] } },
];
/** Full path of a program on PATH (sbin folders included), or undefined. */
function findProgram(name) {
    if ((0,external_node_path_.isAbsolute)(name))
        return isExecutable(name) ? name : undefined;
    const dirs = (process.env.PATH ?? '').split(external_node_path_.delimiter).concat(['/usr/local/sbin', '/usr/sbin', '/sbin']);
    return dirs
        .filter((dir) => dir !== '')
        .map((dir) => (0,external_node_path_.join)(dir, name))
        .find(isExecutable);
}
function isExecutable(path) {
    try {
        (0,external_node_fs_.accessSync)(path, external_node_fs_.constants.X_OK);
        return (0,external_node_fs_.statSync)(path).isFile();
    }
    catch {
        return false;
    }
}
/** The requirements none of whose programs is installed. */
function missingRequirements(requirements = REQUIREMENTS) {
    return requirements.filter((requirement) => !requirement.programs.some((program) => findProgram(program)));
}
function programsOf(requirements) {
    return requirements.map((requirement) => requirement.programs[0]).join(', ');
}
//# sourceMappingURL=programs.js.map
;// CONCATENATED MODULE: ./build/src/host/host-setup.js






const KVM_UDEV_RULE_PATH = '/etc/udev/rules.d/65-kvm.rules';
const KVM_UDEV_RULE = 'KERNEL=="kvm", GROUP="kvm", MODE="0660"';
const LIBVIRT_WAIT_MS = 30_000;
/** The runner cannot be made ready; the message says how to fix it. */
class HostSetupError extends Error {
    constructor(message) {
        super(message);
        this.name = 'HostSetupError';
    }
}
/** apt-get on Debian and Ubuntu, dnf on Fedora and RHEL-like systems: from os-release, else whichever is installed. */
function packageManager(osRelease = readOsRelease()) {
    const family = `${osRelease.ID ?? ''} ${osRelease.ID_LIKE ?? ''}`.toLowerCase().split(/\s+/);
    if (family.some((id) => ['debian', 'ubuntu'].includes(id)) && findProgram('apt-get'))
        return 'apt-get';
    if (family.some((id) => ['fedora', 'rhel', 'centos'].includes(id)) && findProgram('dnf'))
        return 'dnf';
    if (findProgram('apt-get'))
        return 'apt-get';
    if (findProgram('dnf'))
        return 'dnf';
    return undefined;
}
function readOsRelease() {
    let text = '';
    try {
        text = (0,external_node_fs_.readFileSync)('/etc/os-release', 'utf8');
    }
    catch {
        return {};
    }
    const fields = {};
    for (const line of text.split('\n')) {
        const match = /^([A-Z_]+)=(.*)$/.exec(line.trim());
        if (match)
            fields[match[1]] = match[2].replace(/^(["'])(.*)\1$/, '$2');
    }
    return fields;
}
async function installMissing(host, reporter) {
    const missing = missingRequirements();
    if (missing.length === 0) {
        reporter.info('All the programs a build needs are installed.');
        return [];
    }
    const manager = packageManager();
    if (!manager) {
        throw new HostSetupError(`Missing programs: ${programsOf(missing)}, and this runner has neither apt-get nor dnf to install them. ` +
            'Fix the runner: install QEMU, libvirt, virt-install, zerofree, rsync, sfdisk and losetup in its image, then build without install-dependencies.');
    }
    const packages = [...new Set(missing.flatMap((requirement) => requirement.packages[manager]))];
    reporter.info(`Missing programs: ${programsOf(missing)}; installing ${packages.join(' ')} with ${manager}.`);
    const echo = { onLine: (line) => reporter.output(line) };
    try {
        if (manager === 'apt-get') {
            // Another apt (unattended-upgrades on a fresh runner) may hold the lock for a while.
            const lock = ['-o', 'DPkg::Lock::Timeout=300'];
            await host.run(['apt-get', ...lock, '-q', 'update'], { root: true, ...echo });
            await host.run(['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', ...lock, '-q', '-y', 'install', ...packages], { root: true, ...echo });
        }
        else {
            await host.run(['dnf', '-y', 'install', ...packages], { root: true, ...echo });
        }
    }
    catch (error) {
        const detail = error instanceof Error ? error.message : String(error);
        throw new HostSetupError(`Installing ${packages.join(' ')} with ${manager} failed: ${detail}\n` +
            `Fix the runner: install them in its image (${manager} install ${packages.join(' ')}) and build without install-dependencies, ` +
            `or let the runner's user run ${manager} through sudo without a password.`);
    }
    const stillMissing = missingRequirements();
    if (stillMissing.length) {
        throw new HostSetupError(`${manager} installed ${packages.join(' ')}, but ${programsOf(stillMissing)} is still not found. ` +
            `Fix the runner: install the packages that provide ${programsOf(stillMissing)} on this distribution and build without install-dependencies.`);
    }
    reporter.info(`Installed ${packages.join(', ')} (for ${programsOf(missing)}).`);
    return packages;
}
async function libvirtAnswers(host, uri) {
    const result = await host.run(['virsh', '-c', uri, 'version'], { allowFailure: true, quiet: true, captureStdout: true });
    return { ok: result.exitCode === 0, lastLines: result.lastLines };
}
/**
 * libvirt must answer at the URI the build uses. On a runner without a
 * service manager (a container), nothing started libvirtd when its package
 * was installed: start it and virtlogd here, as daemons.
 */
async function ensureLibvirt(host, reporter) {
    const uri = libvirtUri(host);
    const first = await libvirtAnswers(host, uri);
    if (first.ok) {
        reporter.info(`libvirt answers at ${uri}.`);
        return false;
    }
    const systemd = (0,external_node_fs_.existsSync)('/run/systemd/system');
    const daemon = ['libvirtd', 'virtqemud'].find((name) => findProgram(name));
    if (uri !== 'qemu:///system' || systemd || !daemon) {
        const how = systemd
            ? 'start it with: sudo systemctl enable --now libvirtd (or virtqemud.socket on modular libvirt)'
            : uri === 'qemu:///system'
                ? 'install libvirt-daemon-system (Debian/Ubuntu) or libvirt-daemon-kvm (Fedora/RHEL) and start libvirtd'
                : 'make sure libvirt-daemon (session mode) is installed and that this user may run it';
        throw new HostSetupError(`libvirt does not answer at ${uri}: ${first.lastLines.join(' / ') || 'no reply'}. Fix the runner: ${how}.`);
    }
    reporter.info(`libvirt does not answer at ${uri} and no service manager runs here: starting virtlogd and ${daemon}.`);
    if (findProgram('virtlogd'))
        await host.run(['virtlogd', '-d'], { root: true, allowFailure: true });
    await host.run([daemon, '-d'], { root: true });
    const deadline = Date.now() + LIBVIRT_WAIT_MS;
    for (;;) {
        const attempt = await libvirtAnswers(host, uri);
        if (attempt.ok)
            break;
        if (Date.now() > deadline) {
            throw new HostSetupError(`${daemon} was started, but libvirt still does not answer at ${uri} after ${LIBVIRT_WAIT_MS / 1000} s: ${attempt.lastLines.join(' / ')}. ` +
                `Fix the runner: run '${daemon} -v' by hand to see why it does not start.`);
        }
        await (0,promises_namespaceObject.setTimeout)(500);
    }
    reporter.info(`libvirt answers at ${uri}.`);
    return true;
}
/**
 * A /dev/kvm that only root may open (mode 600, no udev rule for it) is opened
 * to the kvm group as distributions do: a udev rule for the next boot, and the
 * same owner and mode applied at once.
 */
async function ensureKvm(host, reporter, devicePath = '/dev/kvm') {
    let status = kvmStatus(host.isRoot, devicePath);
    let fixed = false;
    let mode;
    try {
        mode = (0,external_node_fs_.statSync)(devicePath).mode;
    }
    catch {
        mode = undefined;
    }
    if (!status.usable && mode !== undefined && (mode & 0o066) === 0) {
        reporter.info(`${devicePath} is mode ${(mode & 0o777).toString(8)} (root only): opening it to the kvm group as distributions do.`);
        try {
            await host.run(['tee', KVM_UDEV_RULE_PATH], { root: true, input: `${KVM_UDEV_RULE}\n` });
            const group = await host.run(['getent', 'group', 'kvm'], { allowFailure: true, quiet: true, captureStdout: true });
            if (group.exitCode !== 0)
                await host.run(['groupadd', '--system', 'kvm'], { root: true });
            await host.run(['chgrp', 'kvm', devicePath], { root: true });
            await host.run(['chmod', '660', devicePath], { root: true });
        }
        catch (error) {
            throw new HostSetupError(`${devicePath} is root-only and could not be opened to the kvm group: ${error instanceof CommandError ? error.message : String(error)}\n` +
                `Fix the runner: echo '${KVM_UDEV_RULE}' | sudo tee ${KVM_UDEV_RULE_PATH} && sudo udevadm control --reload-rules && sudo udevadm trigger --name-match=kvm`);
        }
        fixed = true;
        reporter.notice(`${devicePath} was root-only (mode ${(mode & 0o777).toString(8)}); it is now group kvm, mode 660, and ${KVM_UDEV_RULE_PATH} keeps it so.`);
        status = kvmStatus(host.isRoot, devicePath);
    }
    reporter.info(status.usable ? 'KVM is usable: installs run at native speed.' : `KVM is not usable: ${status.reason}.`);
    return { status, fixed };
}
/** Make this runner able to build: packages, a running libvirt, a usable /dev/kvm where there is one. */
async function prepareHost(host, reporter) {
    const installed = await installMissing(host, reporter);
    const libvirtStarted = await ensureLibvirt(host, reporter);
    const kvm = await ensureKvm(host, reporter);
    return { installed, libvirtStarted, kvm: kvm.status, kvmFixed: kvm.fixed };
}
//# sourceMappingURL=host-setup.js.map
;// CONCATENATED MODULE: external "node:crypto"
const external_node_crypto_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:crypto");
;// CONCATENATED MODULE: external "node:fs/promises"
const external_node_fs_promises_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:fs/promises");
;// CONCATENATED MODULE: ./build/src/host/host.js
/** The uid the build runs as. */
function currentUid() {
    return process.getuid?.() ?? 0;
}
//# sourceMappingURL=host.js.map
;// CONCATENATED MODULE: ./build/src/host/privileges.js


/** The programs a build runs as root (through `sudo -n` when not root). */
const ROOT_COMMANDS = ['losetup', 'blkid', 'mount', 'umount', 'fstrim', 'zerofree', 'ls', 'cat', 'rm'];
/** A sudoers line that allows exactly the root commands of a build. */
function sudoersLine(user = process.env.USER ?? process.env.LOGNAME ?? 'builder') {
    const paths = ROOT_COMMANDS.map((command) => findProgram(command) ?? command);
    return `${user} ALL=(root) NOPASSWD: ${paths.join(', ')}`;
}
/** Root commands that `sudo -n` will not run for this user. */
function commandsSudoRefuses() {
    return ROOT_COMMANDS.filter((command) => {
        const path = findProgram(command) ?? command;
        return (0,external_node_child_process_.spawnSync)('sudo', ['-n', '-l', path], { stdio: 'ignore' }).status !== 0;
    });
}
//# sourceMappingURL=privileges.js.map
;// CONCATENATED MODULE: ./build/src/host/system-host.js







/** The real machine: commands run, files are written. */
class SystemHost {
    reporter;
    signal;
    isRoot;
    live = true;
    constructor(reporter, signal, uid = currentUid()) {
        this.reporter = reporter;
        this.signal = signal;
        this.isRoot = uid === 0;
    }
    uninterruptible() {
        return new SystemHost(this.reporter, undefined, this.isRoot ? 0 : 1);
    }
    async run(argv, options = {}) {
        const command = options.root && !this.isRoot ? ['sudo', '-n', ...argv] : [...argv];
        if (!options.quiet)
            this.reporter.command(command);
        try {
            return await runCommand(command, { signal: this.signal, ...options });
        }
        catch (error) {
            if (error instanceof CommandError && command[0] === 'sudo' && sudoRefused(error.lastLines)) {
                throw new CommandError(command, error.exitCode, error.signal, [
                    ...error.lastLines,
                    `'${formatCommand(argv)}' needs root, and sudo does not allow it without a password.`,
                    `Allow the build's root commands in sudoers (visudo -f /etc/sudoers.d/image-factory): ${sudoersLine()}`,
                ]);
            }
            throw error;
        }
    }
    uniqueSuffix(bytes) {
        return (0,external_node_crypto_namespaceObject.randomBytes)(bytes).toString('hex');
    }
    makeTempDir(prefix) {
        return (0,external_node_fs_promises_namespaceObject.mkdtemp)(prefix);
    }
    async makeDir(path, mode) {
        await (0,external_node_fs_promises_namespaceObject.mkdir)(path, { mode });
    }
    chmod(path, mode) {
        return (0,external_node_fs_promises_namespaceObject.chmod)(path, mode);
    }
    chown(path, uid, gid) {
        return (0,external_node_fs_promises_namespaceObject.chown)(path, uid, gid);
    }
    writeFile(path, content, mode) {
        // 'wx': never through an existing file or symlink.
        return (0,external_node_fs_promises_namespaceObject.writeFile)(path, content, { mode, flag: 'wx' });
    }
    copyFile(from, to) {
        return (0,external_node_fs_promises_namespaceObject.copyFile)(from, to);
    }
    remove(path) {
        return (0,external_node_fs_promises_namespaceObject.rm)(path, { recursive: true, force: true });
    }
    async publish(from, to) {
        // link() refuses to replace an existing file: nothing under a final name is ever overwritten.
        await (0,external_node_fs_promises_namespaceObject.link)(from, to);
        await (0,external_node_fs_promises_namespaceObject.unlink)(from);
    }
    async stat(path) {
        const info = await (0,external_node_fs_promises_namespaceObject.stat)(path);
        return { size: info.size, blocks: info.blocks, uid: info.uid, gid: info.gid };
    }
    isMounted(path) {
        let mountinfo;
        try {
            mountinfo = (0,external_node_fs_.readFileSync)('/proc/self/mountinfo', 'utf8');
        }
        catch {
            return false;
        }
        return mountinfo.split('\n').some((line) => unescapeMountPath(line.split(' ')[4] ?? '') === path);
    }
}
function sudoRefused(lines) {
    return lines.some((line) => /password is required|not allowed|may not run/.test(line));
}
function unescapeMountPath(field) {
    return field.replace(/\\([0-7]{3})/g, (_, octal) => String.fromCharCode(parseInt(octal, 8)));
}
//# sourceMappingURL=system-host.js.map
;// CONCATENATED MODULE: ./build/src/host/qemu-access.js


/**
 * The user libvirt runs qemu as under qemu:///system: `user` in qemu.conf,
 * else the distribution's default (libvirt-qemu on Debian/Ubuntu, qemu on
 * Fedora/RHEL).
 */
function qemuSystemUser() {
    try {
        const conf = (0,external_node_fs_.readFileSync)('/etc/libvirt/qemu.conf', 'utf8');
        const match = /^\s*user\s*=\s*"([^"]+)"/m.exec(conf);
        if (match)
            return match[1].replace(/^\+/, '');
    }
    catch {
        // no qemu.conf: fall back to the packaged defaults
    }
    let passwd = '';
    try {
        passwd = (0,external_node_fs_.readFileSync)('/etc/passwd', 'utf8');
    }
    catch {
        return undefined;
    }
    for (const user of ['libvirt-qemu', 'qemu']) {
        if (new RegExp(`^${user}:`, 'm').test(passwd))
            return user;
    }
    return undefined;
}
/**
 * Folders on the way to `path` that another user cannot pass through: no
 * search (x) permission for "other". Root's home (700) and mkdtemp folders are
 * the usual ones.
 */
function foldersWithoutSearch(path) {
    const blocked = [];
    let dir = (0,external_node_path_.dirname)(path);
    for (;;) {
        try {
            if (((0,external_node_fs_.statSync)(dir).mode & 0o001) === 0)
                blocked.push(dir);
        }
        catch {
            // a folder that cannot be inspected is left to the install to report
        }
        const parent = (0,external_node_path_.dirname)(dir);
        if (parent === dir)
            break;
        dir = parent;
    }
    return blocked.reverse();
}
//# sourceMappingURL=qemu-access.js.map
;// CONCATENATED MODULE: ./build/src/host/host-checks.js






/** Checks of the host before anything is created: the programs a build runs, and sudo for a normal user. */
function checkHost(spec) {
    const isRoot = currentUid() === 0;
    // setfacl is needed only where qemu must be let through a private folder.
    const needsAcl = isRoot && qemuSystemUser() !== undefined && foldersWithoutSearch((0,external_node_path_.join)(spec.outputDir, 'x')).length > 0;
    const missing = missingRequirements(REQUIREMENTS.filter((requirement) => needsAcl || !requirement.programs.includes('setfacl')));
    if (missing.length) {
        const apt = [...new Set(missing.flatMap((requirement) => requirement.packages['apt-get']))].join(' ');
        const dnf = [...new Set(missing.flatMap((requirement) => requirement.packages.dnf))].join(' ');
        throw new UsageError(`missing programs: ${programsOf(missing)}. Install them (apt-get install ${apt}, or dnf install ${dnf}), or run with --install-dependencies.`);
    }
    if (!isRoot) {
        const refused = commandsSudoRefuses();
        if (refused.length) {
            throw new UsageError(`building as a normal user runs a few steps as root through 'sudo -n', but sudo refuses ${refused.join(', ')} without a password. ` +
                `Allow exactly the build's root commands with a sudoers rule (visudo -f /etc/sudoers.d/image-factory):\n  ${sudoersLine()}`);
        }
    }
}
//# sourceMappingURL=host-checks.js.map
;// CONCATENATED MODULE: external "node:string_decoder"
const external_node_string_decoder_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:string_decoder");
;// CONCATENATED MODULE: ./build/src/pipeline/console.js


/** A file that another process appends to (virtlogd's console logs): hands out what was added since the last read. */
class AppendedFile {
    path;
    offset = 0;
    constructor(path) {
        this.path = path;
    }
    /** The bytes appended since the last call; empty while the file does not exist or has not grown. */
    async readNew() {
        let size;
        try {
            size = (await (0,external_node_fs_promises_namespaceObject.stat)(this.path)).size;
        }
        catch {
            return Buffer.alloc(0);
        }
        if (size <= this.offset)
            return Buffer.alloc(0);
        const handle = await (0,external_node_fs_promises_namespaceObject.open)(this.path, 'r');
        try {
            const chunks = [];
            while (this.offset < size) {
                const buffer = Buffer.alloc(Math.min(size - this.offset, 1 << 20));
                const { bytesRead } = await handle.read(buffer, 0, buffer.length, this.offset);
                if (bytesRead === 0)
                    break;
                this.offset += bytesRead;
                chunks.push(buffer.subarray(0, bytesRead));
            }
            return Buffer.concat(chunks);
        }
        finally {
            await handle.close();
        }
    }
}
/** Terminal escape sequences, carriage returns and other control characters out; lines kept. */
function cleanConsoleText(raw) {
    return (raw
        // eslint-disable-next-line no-control-regex
        .replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '')
        // eslint-disable-next-line no-control-regex
        .replace(/\x1b[()][0-9A-Za-z]|\x1b[=>78cDEHM]/g, '')
        .replace(/\r\n/g, '\n')
        .replace(/\r/g, '\n')
        // eslint-disable-next-line no-control-regex
        .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, ''));
}
/** The console text kept for matching and quoting (a boot prints far less; an install is quoted from its end). */
const MAX_TEXT_CHARS = 4 << 20;
const KEEP_LINES = 20;
/**
 * Follows the serial console log of a VM that virtlogd writes. Complete lines
 * go to `onLine` as they arrive; the cleaned text so far (the unfinished last
 * line included: a login prompt ends without a newline) is kept for matching,
 * and its last lines for progress and error messages.
 */
class ConsoleFollower {
    onLine;
    file;
    decoder = new external_node_string_decoder_namespaceObject.StringDecoder('utf8');
    complete = '';
    /** Raw text after the last newline: an escape sequence may be cut in two by a read. */
    pending = '';
    timer;
    constructor(path, onLine) {
        this.onLine = onLine;
        this.file = new AppendedFile(path);
    }
    /** Poll the file every `intervalMs` until stop(). */
    start(intervalMs = 1000) {
        this.timer = setInterval(() => void this.poll(), intervalMs);
        this.timer.unref();
    }
    /** Stop polling; what was written until now is read, and the unfinished line counts as a line. */
    async stop() {
        if (this.timer)
            clearInterval(this.timer);
        this.timer = undefined;
        await this.poll();
        if (this.pending !== '')
            this.accept('\n');
    }
    async poll() {
        const added = await this.file.readNew();
        if (added.length > 0)
            this.accept(this.decoder.write(added));
    }
    /** The cleaned console text so far, the unfinished last line included. */
    get text() {
        return this.complete + cleanConsoleText(this.pending);
    }
    lastLines(count = KEEP_LINES) {
        return this.text
            .split('\n')
            .map((line) => line.trimEnd())
            .filter((line) => line.trim() !== '')
            .slice(-count);
    }
    latest() {
        return this.lastLines(1)[0];
    }
    accept(raw) {
        const text = this.pending + raw;
        const end = text.lastIndexOf('\n') + 1;
        const lines = cleanConsoleText(text.slice(0, end));
        this.pending = text.slice(end);
        this.complete += lines;
        if (this.complete.length > MAX_TEXT_CHARS)
            this.complete = this.complete.slice(-MAX_TEXT_CHARS);
        if (!this.onLine)
            return;
        for (const line of lines.split('\n')) {
            const trimmed = line.trimEnd();
            if (trimmed.trim() !== '')
                this.onLine(trimmed);
        }
    }
}
//# sourceMappingURL=console.js.map
;// CONCATENATED MODULE: external "node:http"
const external_node_http_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:http");
;// CONCATENATED MODULE: ./build/src/pipeline/answer-server.js



/** Where a guest under user networking (slirp) reaches the host's loopback. */
const GUEST_HOST_ADDRESS = '10.0.2.2';
/**
 * Serve the answer file over HTTP for the duration of the install, for
 * installers that do not read a file injected into the initrd (Ubuntu's
 * subiquity). Bound to 127.0.0.1 on a random port; the guest reaches it at
 * 10.0.2.2. An autoinstall file is served as a NoCloud seed folder
 * (user-data and an empty meta-data).
 */
async function serveAnswerFile(ctx) {
    const answer = ctx.spec.answerFile;
    if (!answer || ctx.spec.answerDelivery !== 'http')
        return undefined;
    const name = answer.kind === 'autoinstall' ? 'user-data' : (0,external_node_path_.basename)(answer.path).replace(/[^A-Za-z0-9._+-]/g, '_');
    // A dry run starts no server: it would only print a port that the real build does not get.
    if (!ctx.host.live) {
        const url = `http://${GUEST_HOST_ADDRESS}:PORT/${name}`;
        ctx.reporter.info(`would serve ${answer.path} at ${url} during the install`);
        return { url, port: 0, close: async () => undefined };
    }
    const body = await (0,external_node_fs_promises_namespaceObject.readFile)(answer.path);
    const files = new Map([[`/${name}`, body]]);
    if (answer.kind === 'autoinstall') {
        files.set('/meta-data', Buffer.from(`instance-id: image-factory-${ctx.spec.stem}\n`));
        files.set('/vendor-data', Buffer.alloc(0));
    }
    const server = (0,external_node_http_namespaceObject.createServer)((request, response) => {
        const path = (request.url ?? '/').split('?')[0];
        const content = files.get(path);
        ctx.reporter.info(`answer file server: ${request.method} ${path} from the installer -> ${content ? 200 : 404}`);
        if (!content || (request.method !== 'GET' && request.method !== 'HEAD')) {
            response.writeHead(404).end();
            return;
        }
        response.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': content.length });
        response.end(request.method === 'HEAD' ? undefined : content);
    });
    await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
    });
    const port = server.address().port;
    const url = `http://${GUEST_HOST_ADDRESS}:${port}/${name}`;
    ctx.reporter.info(`serving the answer file at ${url} (127.0.0.1:${port} on this host) during the install`);
    return {
        url,
        port,
        close: () => new Promise((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
        }),
    };
}
//# sourceMappingURL=answer-server.js.map
;// CONCATENATED MODULE: ./build/src/pipeline/reporter.js
const STEP_TITLES = {
    fetch: 'Fetch the installer kernel and initrd',
    disk: 'Create the raw disk',
    install: 'Run the unattended installer',
    scrub: 'Remove installer logs and zero free space',
    convert: 'Convert to qcow2',
    checksum: 'Compute the SHA-256',
    publish: 'Move the finished files into place',
    'boot-test': 'Boot the finished image',
    upload: 'Upload',
    'post-build': 'Run the post-build command',
};
/** Lets through at most one message per interval, always the latest. */
function throttled(intervalMs, emit) {
    let last = 0;
    return (message, force = false) => {
        const now = Date.now();
        if (force || now - last >= intervalMs) {
            last = now;
            emit(message);
        }
    };
}
//# sourceMappingURL=reporter.js.map
;// CONCATENATED MODULE: ./build/src/pipeline/virt-install.js

/** A VM step (install, boot test) that failed: the message says why, the console says what a person would have seen. */
class VmStepError extends Error {
    consoleLines;
    constructor(message, consoleLines) {
        super(consoleLines.length ? `${message}\nLast console lines:\n${consoleLines.map((l) => `  | ${l}`).join('\n')}` : message);
        this.consoleLines = consoleLines;
        this.name = 'VmStepError';
    }
}
/**
 * virt-install splits its option strings with shlex on commas: a value with a
 * comma, quote, backslash or white space is quoted the way shlex reads it.
 */
function escapeOptionValue(value) {
    if (!/[,'"\\\s]/.test(value))
        return value;
    return `'${value.replace(/'/g, `'"'"'`)}'`;
}
/** The virt-install command line of a VM: one builder for the install and the boot test. */
async function virtInstallCommand(host, spec, vm) {
    const lifecycle = vm.boot.kind === 'installer' ? ['--noreboot', '--wait', '-1'] : ['--import', '--transient'];
    const disks = vm.disks.flatMap((disk) => [
        '--disk',
        `path=${escapeOptionValue(disk.path)},bus=virtio,format=${disk.format}${disk.readonly ? ',readonly=on' : ''}`,
    ]);
    const command = [
        'virt-install',
        '--connect',
        libvirtUri(host),
        '--virt-type',
        vm.accelerator === 'kvm' ? 'kvm' : 'qemu',
        await osinfoFlag(host),
        spec.osinfo,
        ...lifecycle,
        '--name',
        vm.name,
        '--vcpus',
        String(spec.cores),
        '--memory',
        String(vm.memoryMiB),
        ...(spec.cpu ? ['--cpu', spec.cpu] : []),
        ...disks,
        '--network',
        `user,model=virtio${vm.mac ? `,mac=${vm.mac}` : ''}`,
        '--graphics',
        vm.vnc ? `vnc,port=${vm.vnc.port}${vm.vnc.listen ? `,listen=${vm.vnc.listen}` : ''}` : 'none',
        '--console',
        `pty,target_type=serial,log.file=${escapeOptionValue(vm.consoleLog)}`,
        '--noautoconsole',
    ];
    if (vm.boot.kind === 'installer') {
        command.push('--location', vm.boot.location);
        if (vm.boot.extraArgs)
            command.push('--extra-args', vm.boot.extraArgs);
        if (vm.boot.inject)
            command.push('--initrd-inject', vm.boot.inject);
    }
    return command;
}
/** Whether the domain still runs: a transient domain that stopped is gone. */
async function domainRunning(host, name) {
    const state = await host.run(['virsh', '-c', libvirtUri(host), 'domstate', name], { allowFailure: true, quiet: true, captureStdout: true });
    if (state.exitCode !== 0) {
        // Gone; any other failure (libvirtd busy) is asked again at the next check.
        return !/failed to get domain|domain not found|no domain with matching name/i.test(state.lastLines.join('\n'));
    }
    return !/shut off|crashed|shutdown/.test(state.stdout);
}
//# sourceMappingURL=virt-install.js.map
;// CONCATENATED MODULE: ./build/src/pipeline/install.js










/** The install step: the answer file made reachable (injected or served), then the installer run to its end. */
async function installSystem(ctx, target, installer, accelerator) {
    const injectedAnswerFile = await injectableAnswerFile(ctx, target.staging);
    const server = await serveAnswerFile(ctx);
    try {
        const answerArgument = server ? answerFileArgument(ctx.spec, server.url) : undefined;
        await runInstaller(ctx, { ...target, accelerator, installer, injectedAnswerFile, answerArgument });
    }
    finally {
        await server?.close();
    }
}
/**
 * The injected file's name goes on the kernel command line, which splits at
 * white space: a name that is not plain is injected as a copy with a plain
 * name, made in `folder`.
 */
async function injectableAnswerFile(ctx, folder) {
    const answer = ctx.spec.answerFile;
    if (!answer || ctx.spec.answerDelivery !== 'inject')
        return undefined;
    const name = (0,external_node_path_.basename)(answer.path);
    if (/^[A-Za-z0-9._+-]+$/.test(name))
        return answer.path;
    const copy = (0,external_node_path_.join)(folder, name.replace(/[^A-Za-z0-9._+-]/g, '_'));
    await ctx.host.copyFile(answer.path, copy);
    return copy;
}
/** The kernel argument that tells each installer family where its answer file is. */
function answerFileArgument(spec, url) {
    switch (spec.answerFile?.kind) {
        case 'preseed':
            return `preseed/url=${url}`;
        case 'kickstart':
            return `inst.ks=${url} ks=${url}`;
        case 'yast':
            return `autoyast=${url}`;
        case 'autoinstall':
            // Subiquity reads user-data and meta-data from a NoCloud seed URL (a folder).
            return `autoinstall ds=nocloud-net;s=${url.replace(/[^/]*$/, '')}`;
        default:
            return '';
    }
}
/** The installer's VM: it boots the netboot kernel (or installer image) with the answer file's argument. */
function installerVm(spec, plan) {
    const { installer } = plan;
    const location = installer.files.image !== undefined
        ? escapeOptionValue(`${installer.dir}/${installer.files.image}`)
        : `${escapeOptionValue(installer.dir)},kernel=${escapeOptionValue(installer.files.linux ?? '')},initrd=${escapeOptionValue(installer.files.initrd ?? '')}`;
    const inject = spec.answerFile && spec.answerDelivery === 'inject' ? (plan.injectedAnswerFile ?? spec.answerFile.path) : undefined;
    const answerArgument = inject ? answerFileArgument(spec, `file:///${(0,external_node_path_.basename)(inject)}`) : (plan.answerArgument ?? '');
    return {
        name: plan.domain,
        accelerator: plan.accelerator,
        memoryMiB: spec.ramMiB,
        disks: [{ path: plan.diskPath, format: 'raw' }],
        consoleLog: plan.consoleLog,
        boot: { kind: 'installer', location, extraArgs: [answerArgument, spec.append].filter((part) => part.trim() !== '').join(' '), inject },
        mac: spec.mac,
        vnc: spec.vnc,
    };
}
/**
 * Run the installer to completion: it powers the machine off when done
 * (--noreboot). Past install-timeout the domain is destroyed. The domain is
 * undefined afterwards whatever happened.
 */
async function runInstaller(ctx, plan) {
    const { spec, reporter, host } = ctx;
    const command = await virtInstallCommand(host, spec, installerVm(spec, plan));
    await host.remove(plan.consoleLog);
    const grants = await grantQemuSearch(ctx, plan.diskPath);
    const domain = ctx.cleanup.register({ kind: 'domain', uri: libvirtUri(host), name: plan.domain });
    const console = new ConsoleFollower(plan.consoleLog, spec.installerLogs ? (line) => reporter.output(`console: ${line}`) : undefined);
    const started = Date.now();
    await watchInstaller(ctx, plan.domain, console, () => host.run(command, { onLine: (line) => reporter.output(line) }));
    await ctx.cleanup.release(domain);
    for (const grant of grants.reverse())
        await ctx.cleanup.release(grant);
    reporter.info(`the installer finished after ${formatDuration(Date.now() - started)}`);
}
/**
 * While virt-install waits for the installer: follow its console, report
 * progress at a calm rate, and destroy the VM past install-timeout. A failure
 * becomes a VmStepError that quotes the console.
 */
async function watchInstaller(ctx, domain, console, install) {
    const { spec, reporter, host } = ctx;
    const limit = formatDuration(spec.installTimeoutMs);
    const started = Date.now();
    console.start();
    const progress = throttled(60_000, (message) => reporter.progress('install', message));
    const ticker = setInterval(() => {
        const latest = console.latest();
        progress(`installer running for ${formatDuration(Date.now() - started)}${latest ? `; console: ${latest.slice(0, 160)}` : ''}`);
    }, 5_000);
    ticker.unref();
    let timedOut = false;
    const timer = setTimeout(() => {
        timedOut = true;
        reporter.warning(`the installer did not finish within ${limit} (install-timeout): stopping the VM`);
        void host.uninterruptible().run(['virsh', '-c', libvirtUri(host), 'destroy', domain], { allowFailure: true });
    }, spec.installTimeoutMs);
    timer.unref();
    try {
        await install();
        if (timedOut)
            throw new Error('timed out');
    }
    catch (error) {
        await console.stop();
        if (error instanceof AbortedError)
            throw error;
        if (timedOut)
            throw new VmStepError(`the installer did not finish within ${limit} (install-timeout); the VM was stopped`, console.lastLines());
        const detail = error instanceof CommandError ? error.message : String(error);
        throw new VmStepError(`virt-install failed: ${detail}`, console.lastLines());
    }
    finally {
        clearTimeout(timer);
        clearInterval(ticker);
        await console.stop();
    }
}
/**
 * Under qemu:///system qemu runs as its own user and must pass through every
 * folder above the disk. Where one is private (root's home, a mkdtemp folder),
 * grant that user search permission with an ACL for the install (or boot test) only.
 */
async function grantQemuSearch(ctx, diskPath, during = 'the install') {
    if (!ctx.host.isRoot)
        return [];
    const user = qemuSystemUser();
    if (!user)
        return [];
    const grants = [];
    for (const folder of foldersWithoutSearch(diskPath)) {
        const acl = await ctx.host.run(['getfacl', '--omit-header', '--absolute-names', folder], { captureStdout: true, quiet: true, readOnly: true });
        if (new RegExp(`^user:${user}:`, 'm').test(acl.stdout))
            continue;
        ctx.reporter.info(`${folder} is private: letting ${user} (qemu) pass through it during ${during}`);
        grants.push(ctx.cleanup.register({ kind: 'acl', path: folder, entry: `u:${user}` }));
        await ctx.host.run(['setfacl', '--modify', `u:${user}:x`, folder], { root: true });
    }
    return grants;
}
//# sourceMappingURL=install.js.map
;// CONCATENATED MODULE: ./build/src/pipeline/boot-test.js










/** How often the VM's state is asked for, and how often the console is read. */
const STATE_INTERVAL_MS = 3_000;
const CONSOLE_INTERVAL_MS = 1_000;
/** Progress messages at a calm rate. */
const PROGRESS_INTERVAL_MS = 30_000;
/** The printed marker: `image-factory-boot-test <token>: cloud-init finished …`. */
const CLOUD_INIT_MARKER = 'image-factory-boot-test';
/** The NoCloud seed's two files for one boot test. */
function noCloudSeed(token) {
    return {
        'meta-data': `instance-id: ${CLOUD_INIT_MARKER}-${token}\nlocal-hostname: ${CLOUD_INIT_MARKER}\n`,
        'user-data': [
            '#cloud-config',
            '# image-factory boot test: print a marker on the serial console once cloud-init has run.',
            '# runcmd writes it straight to ttyS0; final_message reaches the console through',
            "# cloud-final's output (console=ttyS0 on the kernel command line).",
            'runcmd:',
            // A line of its own: the console may hold an unfinished login prompt.
            `  - [sh, -c, 'printf "\\n%s\\n" "${CLOUD_INIT_MARKER} ${token}: cloud-init runcmd ran" > /dev/ttyS0 || true']`,
            `final_message: "${CLOUD_INIT_MARKER} ${token}: cloud-init finished after $UPTIME seconds"`,
            '',
        ].join('\n'),
    };
}
/** The console lines that say cloud-init got to its final stage. */
function cloudInitPattern(token) {
    return new RegExp(`${CLOUD_INIT_MARKER} ${token}: cloud-init (?:finished|runcmd ran)`);
}
/**
 * The console text with a line break before each message that a kernel or
 * systemd printed in the middle of a line. A getty prompt (`debian login: `)
 * ends without a newline, and on a busy console the next message — a
 * timestamped kernel or journal line, cloud-init's output — lands right
 * after it: `$` in `expect` should still match after the prompt.
 */
function splitMessages(text) {
    return text.replace(/([^\n])(?=\[ *\d+\.\d+\] |\[ *(?:OK|FAILED|DEPEND|TIME) *\] )/g, '$1\n');
}
/** `expect` matches the console as it is, or with the interleaved messages split off. */
function consoleMatches(expect, text) {
    return expect.test(text) || expect.test(splitMessages(text));
}
/** `raw` or `qcow2`, from the file name; the build's format otherwise. */
function formatOf(ctx, imagePath) {
    if (/\.qcow2$/i.test(imagePath))
        return 'qcow2';
    if (/\.(raw|img)$/i.test(imagePath))
        return 'raw';
    return ctx.spec.format;
}
function describeExpectations(expect, cloudInit, token) {
    return `the console to show /${expect.source}/${cloudInit ? ` and cloud-init's marker '${CLOUD_INIT_MARKER} ${token}: cloud-init finished'` : ''}`;
}
function bootVm(ctx, image) {
    const folder = (0,external_node_path_.join)((0,external_node_path_.dirname)(image), `.boot-test-${ctx.host.uniqueSuffix(3)}`);
    return {
        folder,
        overlay: (0,external_node_path_.join)(folder, 'overlay.qcow2'),
        seedDir: (0,external_node_path_.join)(folder, 'seed'),
        seed: (0,external_node_path_.join)(folder, 'seed.iso'),
        consoleLog: (0,external_node_path_.join)(folder, 'console.log'),
        domain: `${ctx.spec.stem}-boot-test-${ctx.host.uniqueSuffix(3)}`,
        token: ctx.host.uniqueSuffix(6),
    };
}
/** What the console must show, and when it did. */
class Expectation {
    token;
    started;
    expect;
    cloudInit;
    cloudInitDone;
    expectSeen;
    cloudInitSeen;
    constructor(ctx, token, started = Date.now()) {
        this.token = token;
        this.started = started;
        this.expect = new RegExp(ctx.spec.bootTest.expect, 'm');
        this.cloudInit = ctx.spec.bootTest.cloudInit;
        this.cloudInitDone = cloudInitPattern(token);
    }
    describe() {
        return describeExpectations(this.expect, this.cloudInit, this.token);
    }
    /** Notes what the console shows now; tells the reporter when something first appears. */
    check(text, reporter) {
        const now = Date.now();
        if (this.expectSeen === undefined && consoleMatches(this.expect, text)) {
            this.expectSeen = now;
            reporter.info(`boot test: the console showed /${this.expect.source}/ after ${formatDuration(now - this.started)}`);
        }
        if (this.cloudInit && this.cloudInitSeen === undefined && this.cloudInitDone.test(text)) {
            this.cloudInitSeen = now;
            reporter.info(`boot test: cloud-init finished after ${formatDuration(now - this.started)}`);
        }
    }
    met() {
        return this.expectSeen !== undefined && (!this.cloudInit || this.cloudInitSeen !== undefined);
    }
    /** Seconds from the start until everything expected had appeared. */
    seconds() {
        return (Math.max(this.expectSeen ?? this.started, this.cloudInitSeen ?? this.started) - this.started) / 1000;
    }
}
/**
 * Boot the finished image in a throw-away VM and wait until its serial
 * console shows `spec.bootTest.expect` (a login prompt by default) and, with
 * `spec.bootTest.cloudInit`, until cloud-init prints a marker that a NoCloud
 * seed asked for. The VM runs on a qcow2 overlay in a fresh folder next to
 * the image, so the image and its checksum stay untouched; VM, overlay, seed
 * and console log are removed on every path. Throws VmStepError when the
 * system does not come up within boot-timeout or the VM stops before.
 */
async function bootTest(ctx, imagePath, accelerator) {
    const { spec, reporter, host } = ctx;
    const image = (0,external_node_path_.resolve)(imagePath);
    const vm = bootVm(ctx, image);
    // libvirt hands the disks of a VM to its qemu user, and does not hand a
    // read-only backing file back: the image's owner is restored at the end.
    const owner = await host.stat(image);
    // Undone newest first: the VM, then the ACLs, then the folder.
    const registrations = [];
    try {
        registrations.push(...(await prepareBootDisks(ctx, image, vm)));
        const command = await virtInstallCommand(host, spec, {
            name: vm.domain,
            accelerator,
            memoryMiB: spec.bootTest.ramMiB,
            disks: [{ path: vm.overlay, format: 'qcow2' }, ...(spec.bootTest.cloudInit ? [{ path: vm.seed, format: 'raw', readonly: true }] : [])],
            consoleLog: vm.consoleLog,
            boot: { kind: 'import' },
        });
        const expectation = new Expectation(ctx, vm.token);
        reporter.info(`booting ${(0,external_node_path_.basename)(image)} in a throw-away VM (${accelerator}); waiting at most ${formatDuration(spec.bootTest.timeoutMs)} for ${expectation.describe()}`);
        registrations.push(ctx.cleanup.register({ kind: 'domain', uri: libvirtUri(host), name: vm.domain }));
        try {
            await host.run(command, { onLine: (line) => reporter.output(line) });
        }
        catch (error) {
            if (error instanceof AbortedError)
                throw error;
            throw new VmStepError(`virt-install could not start the boot-test VM: ${error instanceof CommandError ? error.message : String(error)}`, []);
        }
        // A recorded VM has no console to watch.
        if (!host.live)
            return { seconds: 0, cloudInitFinished: undefined, lastLines: [] };
        return await waitForSystem(ctx, vm, expectation);
    }
    finally {
        // Failure, timeout or interruption: stop the VM, remove overlay, seed and console log now.
        await releaseAll(ctx, registrations);
        await restoreOwner(ctx, image, owner.uid, owner.gid);
    }
}
/** The boot test's folder, its overlay on the image, and the NoCloud seed. */
async function prepareBootDisks(ctx, image, vm) {
    const { host, cleanup } = ctx;
    const registrations = [];
    const folderEntry = cleanup.register({ kind: 'path', path: vm.folder });
    try {
        await host.makeDir(vm.folder, 0o755);
    }
    catch (error) {
        // Not ours (a name clash): do not remove it.
        cleanup.forget(folderEntry);
        throw error;
    }
    registrations.push(folderEntry);
    // mkdir's mode is filtered by the umask: qemu's user must pass through.
    await host.chmod(vm.folder, 0o755);
    registrations.push(...(await grantQemuSearch(ctx, vm.overlay, 'the boot test')));
    await host.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', formatOf(ctx, image), '-b', image, vm.overlay]);
    if (ctx.spec.bootTest.cloudInit) {
        await host.makeDir(vm.seedDir, 0o755);
        for (const [name, content] of Object.entries(noCloudSeed(vm.token)))
            await host.writeFile((0,external_node_path_.join)(vm.seedDir, name), content, 0o644);
        // xorriso: a dependency of virtinst, so wherever virt-install is, this is too.
        await host.run(['xorriso', '-as', 'mkisofs', '-quiet', '-volid', 'cidata', '-joliet', '-rock', '-output', vm.seed, vm.seedDir]);
    }
    return registrations;
}
/** Watch the console until the expectation is met, boot-timeout passes, or the VM stops. */
async function waitForSystem(ctx, vm, expectation) {
    const { spec, reporter, host } = ctx;
    const screen = new ConsoleFollower(vm.consoleLog);
    const started = Date.now();
    const deadline = started + spec.bootTest.timeoutMs;
    const progress = throttled(PROGRESS_INTERVAL_MS, (message) => reporter.progress('boot-test', message));
    let stoppedAt;
    let lastStateCheck = Date.now();
    for (;;) {
        await screen.poll();
        expectation.check(screen.text, reporter);
        if (expectation.met())
            break;
        const now = Date.now();
        if (now >= deadline) {
            reporter.warning(`the system did not come up within ${formatDuration(spec.bootTest.timeoutMs)} (boot-timeout): stopping the VM`);
            break;
        }
        if (now - lastStateCheck >= STATE_INTERVAL_MS) {
            lastStateCheck = now;
            if (!(await domainRunning(host, vm.domain))) {
                // What it printed last, virtlogd may write a moment later.
                await (0,promises_namespaceObject.setTimeout)(500);
                await screen.poll();
                expectation.check(screen.text, reporter);
                if (!expectation.met())
                    stoppedAt = Date.now();
                break;
            }
        }
        const latest = screen.latest();
        progress(`VM up for ${formatDuration(now - started)}${latest ? `; console: ${latest.slice(0, 160)}` : ''}`);
        try {
            await (0,promises_namespaceObject.setTimeout)(CONSOLE_INTERVAL_MS, undefined, { signal: ctx.signal });
        }
        catch {
            throw new AbortedError('interrupted during the boot test');
        }
    }
    const lastLines = screen.lastLines();
    if (!expectation.met())
        throw bootFailure(ctx, expectation, lastLines, stoppedAt === undefined ? undefined : stoppedAt - started);
    const seconds = expectation.seconds();
    const cloudInitAfter = expectation.cloudInitSeen === undefined ? undefined : (expectation.cloudInitSeen - started) / 1000;
    reporter.info(`boot test passed: the image came up in ${seconds.toFixed(1)} s` +
        (cloudInitAfter !== undefined ? ` (cloud-init finished after ${cloudInitAfter.toFixed(1)} s)` : ''));
    return { seconds, cloudInitFinished: expectation.cloudInit ? true : undefined, lastLines };
}
/** Why the system did not come up, in words, with the console quoted. */
function bootFailure(ctx, expectation, lastLines, stoppedAfterMs) {
    const { expect, cloudInit } = expectation;
    const limit = formatDuration(ctx.spec.bootTest.timeoutMs);
    const how = stoppedAfterMs !== undefined
        ? `the VM stopped after ${formatDuration(stoppedAfterMs)}, before the system came up`
        : `the boot did not get there within ${limit} (boot-timeout), so the VM was stopped`;
    const missing = expectation.expectSeen !== undefined
        ? `The console showed /${expect.source}/, but cloud-init never printed its marker (is cloud-init installed, with the NoCloud datasource, and does its output reach ttyS0?).`
        : `The console never showed /${expect.source}/${cloudInit && expectation.cloudInitSeen !== undefined ? ' (cloud-init did finish)' : ''}.`;
    const empty = lastLines.length === 0 ? ' The console stayed empty: no boot loader, or a kernel that does not print to the serial console (console=ttyS0)?' : '';
    return new VmStepError(`the boot test expected ${expectation.describe()}, but ${how}. ${missing}${empty}`, lastLines);
}
/** Undo the boot test's resources newest first; what fails stays registered for the build's unwind. */
async function releaseAll(ctx, registrations) {
    while (registrations.length) {
        try {
            await ctx.cleanup.release(registrations[registrations.length - 1]);
        }
        catch (error) {
            ctx.reporter.warning(`boot test: ${error.message}`);
            return;
        }
        registrations.pop();
    }
}
async function restoreOwner(ctx, path, uid, gid) {
    try {
        const now = await ctx.host.stat(path);
        if (now.uid === uid && now.gid === gid)
            return;
        await ctx.host.chown(path, uid, gid);
    }
    catch (error) {
        if (error.code === 'ENOENT')
            return;
        ctx.reporter.warning(`boot test: could not give ${path} back to uid ${uid}, gid ${gid}: ${error.message}`);
    }
}
//# sourceMappingURL=boot-test.js.map
;// CONCATENATED MODULE: ./build/src/pipeline/checksum.js






/** Large reads keep the hash busy; memory stays constant at a few of these. */
const READ_SIZE = 4 << 20;
/** SHA-256 over a stream: constant memory whatever the image size. */
async function sha256File(path, onProgress, signal) {
    const total = (await (0,external_node_fs_promises_namespaceObject.stat)(path)).size;
    const hash = (0,external_node_crypto_namespaceObject.createHash)('sha256');
    let done = 0;
    const stream = (0,external_node_fs_.createReadStream)(path, { highWaterMark: READ_SIZE, signal });
    for await (const chunk of stream) {
        hash.update(chunk);
        done += chunk.length;
        onProgress?.(done, total);
    }
    return hash.digest('hex');
}
/**
 * Hash the image and write `<hex>  <file name>` — what `sha256sum -c` reads —
 * to `checksumPath`.
 */
async function writeChecksum(ctx, imagePath, checksumPath, finalName = (0,external_node_path_.basename)(imagePath)) {
    // A recorded build has no image to hash.
    if (!ctx.host.live) {
        ctx.reporter.info(`would write the SHA-256 of ${finalName} to ${(0,external_node_path_.basename)(checksumPath)}`);
        return '';
    }
    const started = Date.now();
    const progress = throttled(10_000, (message) => ctx.reporter.progress('checksum', message));
    const digest = await sha256File(imagePath, (done, total) => progress(`hashed ${formatBytes(done)} of ${formatBytes(total)} (${total ? ((100 * done) / total).toFixed(0) : 100}%)`), ctx.signal);
    const seconds = (Date.now() - started) / 1000;
    const size = (await (0,external_node_fs_promises_namespaceObject.stat)(imagePath)).size;
    ctx.reporter.info(`SHA 256 sum of ${finalName}: ${digest} (${formatBytes(size)} in ${seconds.toFixed(1)} s)`);
    await ctx.host.writeFile(checksumPath, `${digest}  ${finalName}\n`, 0o644);
    return digest;
}
//# sourceMappingURL=checksum.js.map
;// CONCATENATED MODULE: ./build/src/pipeline/convert.js

function convertCommand(ctx, rawPath, qcow2Path) {
    const command = ['qemu-img', 'convert', '-p', '-f', 'raw', '-O', 'qcow2'];
    // Measured with test/bench/convert-flags.bench.ts (qemu-img 7.2, 2 cores,
    // 4 GiB disk with 200 MiB kept): uncompressed, neither -W nor -m 4/16
    // changes the time beyond the noise (0.1-0.3 s either way), while -W
    // allocates the qcow2's clusters out of guest order (10x more extents in
    // `qemu-img map`), so it is left off. Compressed, -W lets the compression
    // run on every core: zlib 6.5 -> 4.1 s, zstd 1.2 -> 0.8 s, same size.
    // -m stays at qemu-img's default of 8 coroutines.
    if (ctx.spec.compress !== 'none') {
        command.push('-W', '-c', '-o', `compression_type=${ctx.spec.compress}`);
    }
    command.push(rawPath, qcow2Path);
    return command;
}
/** `qemu-img convert -O qcow2`, with its progress passed on at a calm rate. */
async function convertToQcow2(ctx, rawPath, qcow2Path) {
    const progress = throttled(10_000, (message) => ctx.reporter.progress('convert', message));
    let last = '';
    await ctx.host.run(convertCommand(ctx, rawPath, qcow2Path), {
        onLine: (line) => {
            const match = /\((\d+(?:\.\d+)?)\/100%\)/.exec(line);
            if (!match)
                return;
            const percent = Number(match[1]).toFixed(0);
            if (percent === last)
                return;
            last = percent;
            progress(`converted ${percent}%`);
        },
    });
}
//# sourceMappingURL=convert.js.map
;// CONCATENATED MODULE: ./build/src/pipeline/disk.js
/** `qemu-img create -f raw`: a sparse file of the image's size. */
async function createRawDisk(ctx, path) {
    await ctx.host.run(['qemu-img', 'create', '-f', 'raw', path, String(ctx.spec.imageSize)]);
}
//# sourceMappingURL=disk.js.map
;// CONCATENATED MODULE: ./build/src/host/recording-host.js



const OK = { exitCode: 0, signal: null, stdout: '', lastLines: [] };
/**
 * A Host that runs nothing and creates nothing: it logs every command (to the
 * reporter, as a real run does) and every file operation (in `calls`), and
 * answers from a plan. Loop devices, mounts, domains and temporary folders are
 * modelled, so that the undo of a step finds what the step "created" and a
 * test can ask what was left behind.
 */
class RecordingHost {
    reporter;
    plan;
    live = false;
    isRoot;
    calls = [];
    loops = new Map();
    mounts = new Set();
    domains = new Map();
    tempDirs = new Set();
    constructor(reporter, plan = {}, uid = currentUid()) {
        this.reporter = reporter;
        this.plan = plan;
        this.isRoot = uid === 0;
    }
    uninterruptible() {
        return this;
    }
    /** The command lines run so far, formatted as a shell would take them back. */
    commands() {
        return this.calls.flatMap((call) => (call.kind === 'run' ? [formatCommand(call.argv)] : []));
    }
    /** What a real build would still have attached, mounted, defined or on disk. */
    leftovers() {
        return [
            ...[...this.loops.keys()].map((device) => `loop device ${device}`),
            ...[...this.mounts].map((path) => `mount at ${path}`),
            ...[...this.domains.keys()].map((name) => `domain ${name}`),
            ...[...this.tempDirs].map((path) => `folder ${path}`),
        ];
    }
    async run(argv, options = {}) {
        const command = options.root && !this.isRoot ? ['sudo', '-n', ...argv] : [...argv];
        this.calls.push({ kind: 'run', argv: command, root: options.root ?? false });
        if (!options.quiet)
            this.reporter.command(command);
        const answer = this.plan.answers?.find(({ match }) => (typeof match === 'function' ? match(argv) : match.test(formatCommand(argv))));
        if (answer?.runForReal && options.readOnly)
            return runCommand(argv, { ...options, allowFailure: true });
        const result = { ...OK, ...(answer?.result ?? this.model(argv)) };
        if (result.exitCode !== 0 && !options.allowFailure) {
            throw new CommandError(command, result.exitCode, result.signal, result.lastLines);
        }
        return result;
    }
    uniqueSuffix(bytes) {
        return 'X'.repeat(bytes * 2);
    }
    async makeTempDir(prefix) {
        const path = this.plan.tempDir?.(prefix) ?? `${prefix}XXXXXX`;
        this.record('makeTempDir', path);
        this.tempDirs.add(path);
        return path;
    }
    async makeDir(path) {
        this.record('makeDir', path);
        this.tempDirs.add(path);
    }
    async chmod(path) {
        this.record('chmod', path);
    }
    async chown(path) {
        this.record('chown', path);
    }
    async writeFile(path) {
        this.record('writeFile', path);
    }
    async copyFile(from, to) {
        this.record('copyFile', from, to);
    }
    async remove(path) {
        this.record('remove', path);
        this.tempDirs.delete(path);
    }
    async publish(from, to) {
        this.record('publish', from, to);
    }
    async stat(path) {
        return this.plan.stat?.(path, this.calls) ?? { size: 0, blocks: 0, uid: 0, gid: 0 };
    }
    isMounted(path) {
        return this.mounts.has(path);
    }
    record(operation, ...paths) {
        this.calls.push({ kind: 'fs', operation, paths });
    }
    /** What the modelled machine answers: loop devices, mounts and libvirt domains come and go. */
    model(argv) {
        const [program, ...args] = argv;
        const last = args[args.length - 1] ?? '';
        if (program === 'losetup')
            return this.losetup(args);
        if (program === 'mount')
            this.mounts.add(last);
        if (program === 'umount')
            this.mounts.delete(last);
        if (program === 'virt-install' && args.includes('--name')) {
            const transient = args.includes('--transient');
            this.domains.set(args[args.indexOf('--name') + 1], { transient, running: transient });
        }
        if (program === 'virsh')
            return this.virsh(args);
        return {};
    }
    losetup(args) {
        if (args.includes('--find')) {
            const device = this.loops.size === 0 ? '/dev/loopN' : `/dev/loopN${this.loops.size + 1}`;
            this.loops.set(device, args[args.length - 1]);
            return { stdout: `${device}\n` };
        }
        if (args[0] === '--detach') {
            this.loops.delete(args[1]);
            return {};
        }
        if (args[0] === '--associated') {
            const devices = [...this.loops].filter(([, file]) => file === args[1]).map(([device]) => device);
            return { stdout: devices.map((device) => `${device}\n`).join('') };
        }
        return {};
    }
    virsh(args) {
        const [, , verb, name] = args;
        const domain = this.domains.get(name);
        if (!domain)
            return verb === 'domstate' ? { exitCode: 1, lastLines: [`error: failed to get domain '${name}'`] } : {};
        if (verb === 'domstate')
            return { stdout: domain.running ? 'running\n' : 'shut off\n' };
        if (verb === 'destroy') {
            if (domain.transient)
                this.domains.delete(name);
            else
                domain.running = false;
        }
        if (verb === 'undefine')
            this.domains.delete(name);
        return {};
    }
}
//# sourceMappingURL=recording-host.js.map
;// CONCATENATED MODULE: ./build/src/pipeline/dry-run.js

/** The installer's usual layout for the dry run's plan: one partition from sector 2048 to the end. */
const FIRST_SECTOR = 2048;
/**
 * The host `--dry-run` builds on: it prints every command and runs none,
 * except the probe that decides how virt-install is called. Its plan answers
 * as a typical build would see it: the installer wrote one ext4 partition,
 * and the raw file shrank once its free space was discarded.
 */
function dryRunHost(reporter, spec) {
    const sectors = Math.floor(spec.imageSize / 512);
    const table = { partitiontable: { sectorsize: 512, partitions: [{ node: 'disk1', start: FIRST_SECTOR, size: sectors - FIRST_SECTOR, type: '83' }] } };
    const trimmed = (calls) => calls.some((call) => call.kind === 'run' && call.argv.includes('fstrim'));
    return new RecordingHost(reporter, {
        answers: [
            { match: /^virt-install --version$/, runForReal: true },
            { match: /^getfacl /, runForReal: true },
            { match: /^sfdisk --json /, result: { stdout: JSON.stringify(table) } },
            { match: /^blkid /, result: { stdout: 'ext4\n' } },
        ],
        stat: (_path, calls) => ({ size: spec.imageSize, blocks: trimmed(calls) ? 0 : sectors, uid: 0, gid: 0 }),
    });
}
//# sourceMappingURL=dry-run.js.map
;// CONCATENATED MODULE: ./build/src/pipeline/upload.js







/** At least one destination failed; `outcomes` has every destination, the good ones too. */
class UploadError extends Error {
    outcomes;
    constructor(outcomes) {
        const failed = outcomes.filter((outcome) => !outcome.ok);
        super(`Upload to ${failed.length} of ${outcomes.length} destination${outcomes.length === 1 ? '' : 's'} failed:\n` +
            failed.map((outcome) => `  [${outcome.destination}] ${outcome.target}: ${outcome.error ?? 'failed'}`).join('\n'));
        this.outcomes = outcomes;
        this.name = 'UploadError';
    }
}
/** Target-side folder for an interrupted transfer: never the final name, and the next upload resumes from it. */
const PARTIAL_DIR = '.rsync-partial';
/** A stalled connection fails after this many seconds instead of hanging the build. */
const RSYNC_TIMEOUT_SECONDS = 300;
/**
 * Options that make rsync write into the file under its final name while it
 * transfers, so a consumer could see half an image. (`--partial` and `-P` are
 * harmless: our `--partial-dir` wins. `--temp-dir` on another file system is
 * harmless too: with a partial dir, rsync copies into it and renames.)
 */
const UNSAFE_OPTIONS = ['--inplace', '--append', '--append-verify', '--write-devices'];
/**
 * Upload the finished image, then its checksum file, to every destination;
 * verify each copy; then run the destination's post-upload commands. A
 * failing destination does not stop the others: UploadError at the end
 * names all that failed.
 */
async function uploadImage(ctx, files) {
    const { spec, reporter } = ctx;
    if (!spec.upload) {
        if (spec.uploads.length) {
            reporter.info(`Upload disabled: not uploading to ${spec.uploads.map((d) => d.name).join(', ')}.`);
        }
        return [];
    }
    const outcomes = [];
    for (const destination of spec.uploads) {
        outcomes.push(await uploadToDestination(ctx, destination, files));
    }
    if (outcomes.some((outcome) => !outcome.ok))
        throw new UploadError(outcomes);
    return outcomes;
}
async function uploadToDestination(ctx, destination, files) {
    const { reporter } = ctx;
    const started = Date.now();
    const { uri: plainTarget, password } = splitRsyncCredentials(destination.target);
    const target = asFolder(plainTarget);
    const secrets = password === undefined ? [] : secretVariants(destination.target, password);
    const clean = (text) => scrubSecrets(text, secrets);
    const shown = clean(redactUri(destination.target));
    const label = `[${destination.name}]`;
    const imageName = (0,external_node_path_.basename)(files.image);
    let attempts = 0;
    let postUploadCommands = 0;
    const outcome = (error) => ({
        destination: destination.name,
        target: shown,
        ok: error === undefined,
        ...(error === undefined ? {} : { error }),
        attempts: Math.max(attempts, 1),
        durationMs: Date.now() - started,
        postUploadCommands,
    });
    const fail = (error) => {
        const message = clean(error);
        reporter.warning(`${label} upload to ${shown} failed: ${message}`);
        return outcome(message);
    };
    const unsafe = destination.args.filter((arg) => UNSAFE_OPTIONS.includes(arg.split('=')[0]));
    if (unsafe.length) {
        return fail(`upload_args ${unsafe.join(' ')} would let rsync write into the file under its final name while it transfers, ` +
            `so a consumer could see half an image; remove ${unsafe.length === 1 ? 'it' : 'them'} from [${destination.name}] upload_args.`);
    }
    const env = password === undefined ? process.env : { ...process.env, RSYNC_PASSWORD: password };
    const progress = throttled(5000, (message) => reporter.progress('upload', `${label} ${message}`));
    const baseOptions = {
        env,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
    };
    const echo = (line) => {
        if (PROGRESS_LINE.test(line))
            progress(clean(line.trim()));
        else
            reporter.output(clean(line));
    };
    const ourFlags = [
        '--no-motd',
        '--times',
        `--partial-dir=${PARTIAL_DIR}`,
        `--timeout=${RSYNC_TIMEOUT_SECONDS}`,
        ...(ctx.spec.format === 'raw' ? ['--sparse'] : []),
    ];
    const runRsync = async (argv, onLine = echo, onAttempt) => {
        await withRetries(() => ctx.host.run(argv, { ...baseOptions, onLine }).then(() => undefined), {
            isTransient: isTransientRsyncFailure,
            describe: (error) => clean(describeRsyncFailure(error)),
            signal: ctx.signal,
            onAttempt: () => {
                attempts += 1;
                onAttempt?.();
            },
            onRetry: (reason, attempt, delayMs) => reporter.warning(`${label} rsync failed (attempt ${attempt} of ${RETRY_ATTEMPTS}): ${reason}; retrying in ${formatDuration(delayMs)}`),
        });
    };
    reporter.info(`${label} uploading ${imageName} to ${shown}`);
    try {
        // The image first: whoever waits for the .sha256sum finds a whole image beside it.
        for (const file of [files.image, files.checksum]) {
            try {
                await runRsync(['rsync', ...destination.args, ...ourFlags, file, target]);
            }
            catch (error) {
                if (isAbort(error, ctx.signal))
                    throw error;
                return fail(`uploading ${(0,external_node_path_.basename)(file)} failed: ${describeRsyncFailure(error)}`);
            }
        }
        const differing = [];
        try {
            const verifyArgs = [...withoutQuiet(destination.args), '--no-motd', '--checksum', '--dry-run', `--timeout=${RSYNC_TIMEOUT_SECONDS}`];
            await runRsync(['rsync', ...verifyArgs, `--out-format=${VERIFY_PREFIX}%i %n`, files.image, files.checksum, target], (line) => {
                const item = parseVerifyLine(line);
                if (item === undefined)
                    echo(line);
                else if (item.change !== '.')
                    differing.push(item.name);
            }, () => differing.splice(0));
        }
        catch (error) {
            if (isAbort(error, ctx.signal))
                throw error;
            return fail(`verifying the upload failed: ${describeRsyncFailure(error)}`);
        }
        if (differing.length) {
            return fail(`the copy on the target differs from the local file (${differing.join(', ')}): rsync --checksum would send it again`);
        }
        for (const argv of destination.postUploadCommands(imageName)) {
            if (argv.length === 0)
                continue;
            try {
                await ctx.host.run(argv, {
                    ...(ctx.signal ? { signal: ctx.signal } : {}),
                    onLine: (line) => reporter.output(clean(line)),
                });
            }
            catch (error) {
                if (isAbort(error, ctx.signal))
                    throw error;
                return fail(`post-upload command '${formatCommand(argv)}' failed: ${describeCommandFailure(error, argv[0])}`);
            }
            postUploadCommands += 1;
        }
    }
    catch (error) {
        if (error instanceof Error)
            error.message = clean(error.message);
        throw error;
    }
    const result = outcome();
    reporter.info(`${label} uploaded and verified ${imageName} and ${(0,external_node_path_.basename)(files.checksum)} on ${shown} in ${formatDuration(result.durationMs)}` +
        (attempts > 1 ? ` (${attempts} rsync runs, retries included)` : ''));
    return result;
}
/** What rsync prints with --progress: `  12,345,678  45%  11.2MB/s  0:00:03`. */
const PROGRESS_LINE = /^\s*[0-9][0-9,.]*[A-Za-z]?\s+[0-9]+%/;
const VERIFY_PREFIX = 'image-factory-verify:';
/** `image-factory-verify:<fcsT...... name` → the update type (`.` = nothing to send) and the name. */
function parseVerifyLine(line) {
    if (!line.startsWith(VERIFY_PREFIX))
        return undefined;
    const rest = line.slice(VERIFY_PREFIX.length);
    const space = rest.indexOf(' ');
    return { change: rest.charAt(0), name: space >= 0 ? rest.slice(space + 1) : rest };
}
/** `-q` silences --out-format, which the verification reads. */
function withoutQuiet(args) {
    return args
        .filter((arg) => arg !== '--quiet')
        .map((arg) => (/^-[A-Za-z]+$/.test(arg) ? arg.replace(/q/g, '') : arg))
        .filter((arg) => arg !== '-');
}
/**
 * Each file goes in its own rsync run, so the target has to name a folder:
 * with one source file, `host:/srv/images` would otherwise become a file
 * called `images`. (`host:` — the remote home — already is one.)
 */
function asFolder(target) {
    return target.endsWith('/') || target.endsWith(':') ? target : `${target}/`;
}
// ---------------------------------------------------------------------------
// Shared with fetch.ts: rsync credentials, failure classification and retries.
/**
 * `rsync://user:secret@host/module/` → the URI without the password (rsync
 * reads that from RSYNC_PASSWORD) and the password. Other forms carry none.
 */
function splitRsyncCredentials(uri) {
    const match = /^(rsync:\/\/[^/@:]*):([^/@]*)@/i.exec(uri);
    if (!match)
        return { uri };
    let password = match[2];
    try {
        password = decodeURIComponent(password);
    }
    catch {
        // Not percent-encoded: take it as written.
    }
    return { uri: `${match[1]}@${uri.slice(match[0].length)}`, password };
}
/** The password as written in the URI and as decoded: either could surface in a message. */
function secretVariants(uri, password) {
    const raw = /^rsync:\/\/[^/@:]*:([^/@]*)@/i.exec(uri)?.[1];
    return [...new Set([password, raw ?? password])].filter((secret) => secret !== '');
}
function scrubSecrets(text, secrets) {
    return secrets.reduce((result, secret) => result.split(secret).join('***'), text);
}
/** rsync's own last lines, minus the progress meter, for a message. */
function describeRsyncFailure(error) {
    return describeCommandFailure(error, 'rsync');
}
function describeCommandFailure(error, program) {
    if (!(error instanceof CommandError))
        return error instanceof Error ? error.message : String(error);
    const how = error.signal ? `was killed by ${error.signal}` : error.exitCode === null ? 'did not start' : `exited with code ${error.exitCode}`;
    const lines = error.lastLines.filter((line) => !PROGRESS_LINE.test(line)).slice(-4);
    return `${program} ${how}${lines.length ? `: ${lines.join(' / ')}` : ''}`;
}
/** Failures that another try cannot mend, whatever the exit code. */
const PERMANENT_RSYNC = /@?ERROR: (?:Unknown module|auth failed|module is read only|access denied|chroot failed|chdir failed)|Permission denied|Host key verification failed|Could not resolve hostname|No such file or directory|Read-only file system|No space left on device|Disk quota exceeded|command not found|protocol version mismatch/i;
/** A connection that did not come up or broke. */
const NETWORK_FAILURE = /Connection refused|Connection reset|Connection timed out|timed out|max connections|Broken pipe|connection unexpectedly closed|No route to host|Network is unreachable/i;
/**
 * Whether an rsync failure is worth another try: socket I/O (10), protocol
 * stream (12), partial transfer (23, 24), timeouts (30, 35) — unless its
 * message shows a permanent cause (missing file, permission, unknown module…)
 * — and "error starting client-server protocol" (5, or 255 from ssh) only when
 * the connection was refused or reset.
 */
function isTransientRsyncFailure(error) {
    if (!(error instanceof CommandError) || error.exitCode === null)
        return false;
    const text = error.lastLines.join('\n');
    if (PERMANENT_RSYNC.test(text))
        return false;
    switch (error.exitCode) {
        case 10:
        case 12:
        case 23:
        case 24:
        case 30:
        case 35:
            return true;
        case 5:
        case 255:
            // A daemon that answered with @ERROR (other than "max connections") said no on purpose.
            return NETWORK_FAILURE.test(text) && !/@ERROR:(?!.*max connections)/.test(text);
        default:
            return false;
    }
}
const RETRY_ATTEMPTS = 4;
const RETRY_DELAY_ENV = 'IMAGE_FACTORY_RETRY_DELAY_MS';
/** Delay before retry `retry` (1, 2, 3): 1 s, 2 s, 4 s, or from IMAGE_FACTORY_RETRY_DELAY_MS as the base. */
function retryDelayMs(retry) {
    const configured = Number(process.env[RETRY_DELAY_ENV]);
    const base = Number.isFinite(configured) && configured >= 0 && process.env[RETRY_DELAY_ENV] !== '' ? configured : 1000;
    return base * 2 ** (retry - 1);
}
/** Run `work` until it succeeds, fails for good, or has failed `attempts` times; back off between tries. */
async function withRetries(work, options) {
    const attempts = options.attempts ?? RETRY_ATTEMPTS;
    for (let attempt = 1;; attempt += 1) {
        options.onAttempt?.(attempt);
        try {
            return await work();
        }
        catch (error) {
            if (isAbort(error, options.signal) || attempt >= attempts || !options.isTransient(error))
                throw error;
            const delayMs = retryDelayMs(attempt);
            options.onRetry(options.describe(error), attempt, delayMs);
            try {
                await (0,promises_namespaceObject.setTimeout)(delayMs, undefined, options.signal ? { signal: options.signal } : {});
            }
            catch {
                throw new AbortedError('interrupted while waiting to retry');
            }
        }
    }
}
function isAbort(error, signal) {
    return error instanceof AbortedError || signal?.aborted === true;
}
//# sourceMappingURL=upload.js.map
;// CONCATENATED MODULE: ./build/src/pipeline/fetch.js










class FetchError extends Error {
    key;
    display;
    reason;
    constructor(key, 
    /** The URI with any password replaced. */
    display, reason) {
        super(`Cannot fetch the installer ${key} from ${display}: ${reason}`);
        this.key = key;
        this.display = display;
        this.reason = reason;
        this.name = 'FetchError';
    }
}
/** libvirt's qemu user reads the cache: folders 0755, files 0644. */
const DIR_MODE = 0o755;
const FILE_MODE = 0o644;
/** A partial this old belongs to no running fetch. */
const STALE_PARTIAL_MS = 24 * 60 * 60 * 1000;
/** An HTTP download that receives nothing for this long is retried. */
const STALL_TIMEOUT_MS = 60_000;
const fetch_PROGRESS_INTERVAL_MS = 5000;
/**
 * Bring the installer files (kernel and initrd, or an installer image) into
 * `<cache_dir>/<image>/`. Nothing ever appears under a final name until it is
 * whole (and verified, where a SHA-256 is configured); a later run reuses what
 * is there when the source says it is unchanged.
 */
async function fetchInstaller(ctx) {
    const dir = ctx.spec.cacheDir;
    const sources = installerSources(ctx.spec.installer);
    const names = cacheNames(sources);
    const files = {};
    for (const [key] of sources)
        files[key] = names[key];
    // A recorded build downloads nothing: it says what a real one would fetch.
    if (!ctx.host.live) {
        for (const [key, source] of sources)
            await describeFetch(ctx, key, source, (0,external_node_path_.join)(dir, names[key]));
        return { dir, files, downloaded: false };
    }
    await makeCacheDir(dir);
    await removeStalePartials(ctx, dir, Object.values(names));
    let downloaded = false;
    for (const [key, source] of sources) {
        const outcome = await fetchOne(ctx, key, source, (0,external_node_path_.join)(dir, names[key]));
        if (outcome === 'downloaded')
            downloaded = true;
    }
    return { dir, files, downloaded };
}
function installerSources(installer) {
    return installer.kind === 'image'
        ? [['image', installer.image]]
        : [
            ['linux', installer.linux],
            ['initrd', installer.initrd],
        ];
}
/** The last part of the URI's path, as the original names cached files; prefixed with the key when two collide. */
function cacheNames(sources) {
    const names = {};
    for (const [key, source] of sources)
        names[key] = sourceFileName(source) ?? key;
    const values = sources.map(([key]) => names[key]);
    if (new Set(values).size !== values.length) {
        for (const [key] of sources)
            names[key] = `${key}-${names[key]}`;
    }
    return names;
}
function sourceFileName(source) {
    let path = source.location;
    if (source.scheme !== 'file') {
        try {
            path = new URL(source.location).pathname;
        }
        catch {
            path = source.location.replace(/^[a-z]+:\/\/[^/]*/i, '');
        }
        try {
            path = decodeURIComponent(path);
        }
        catch {
            // Keep it as written.
        }
    }
    const name = external_node_path_.posix.basename(path);
    return name === '' || name === '.' || name === '..' ? undefined : name;
}
async function makeCacheDir(dir) {
    const first = await (0,external_node_fs_promises_namespaceObject.mkdir)(dir, { recursive: true, mode: DIR_MODE });
    // mkdir's mode is filtered by the umask; the qemu user must still get in.
    if (first !== undefined) {
        for (let path = dir; path.startsWith(first); path = (0,external_node_path_.join)(path, '..')) {
            await (0,external_node_fs_promises_namespaceObject.chmod)(path, DIR_MODE);
            if (path === first)
                break;
        }
    }
}
/** Partials a killed run left behind (ours, and rsync's `.name.XXXXXX`), once they are a day old. */
async function removeStalePartials(ctx, dir, names) {
    const rsyncTemp = new Set(names.map((name) => `.${name}.`));
    const now = Date.now();
    for (const entry of await (0,external_node_fs_promises_namespaceObject.readdir)(dir)) {
        const ours = /\.partial-[0-9a-f]+$/.test(entry);
        const rsyncs = [...rsyncTemp].some((prefix) => entry.startsWith(prefix) && entry.length === prefix.length + 6);
        if (!ours && !rsyncs)
            continue;
        const path = (0,external_node_path_.join)(dir, entry);
        const info = await (0,external_node_fs_promises_namespaceObject.stat)(path).catch(() => undefined);
        if (info?.isFile() && now - info.mtimeMs > STALE_PARTIAL_MS) {
            await (0,external_node_fs_promises_namespaceObject.rm)(path, { force: true });
            ctx.reporter.info(`Removed the stale partial download ${path}`);
        }
    }
}
async function describeFetch(ctx, key, source, path) {
    switch (source.scheme) {
        case 'file':
            ctx.reporter.info(`${key}: would copy ${source.display} to ${path}`);
            return;
        case 'http':
        case 'https':
            ctx.reporter.info(`${key}: would download ${source.display} to ${path} (revalidated if cached)`);
            return;
        case 'rsync':
            await ctx.host.run(rsyncCommand(splitRsyncCredentials(source.location).uri, path));
            return;
    }
}
async function fetchOne(ctx, key, source, path) {
    const { reporter } = ctx;
    const name = (0,external_node_path_.basename)(path);
    if (source.sha256) {
        const cached = await statFile(path);
        if (cached) {
            const actual = await sha256File(path, undefined, ctx.signal);
            if (actual === source.sha256) {
                reporter.info(`${key}: ${name} taken from cache (${formatBytes(cached.size)}, SHA-256 matches)`);
                return 'cached';
            }
            reporter.info(`${key}: the cached ${name} does not have the configured SHA-256; fetching it again`);
            await removeCached(path);
        }
    }
    try {
        switch (source.scheme) {
            case 'file':
                return await copyLocal(ctx, key, source, path);
            case 'http':
            case 'https':
                return await downloadHttp(ctx, key, source, path);
            case 'rsync':
                return await fetchRsync(ctx, key, source, path);
        }
    }
    catch (error) {
        if (error instanceof FetchError)
            throw error;
        if (isAbort(error, ctx.signal)) {
            throw new AbortedError(`interrupted while fetching the installer ${key} from ${source.display}`);
        }
        throw new FetchError(key, source.display, scrub(source, describeError(error)));
    }
}
/** Where a file is written before it is complete: same folder, so the final rename is atomic. */
function partialPath(path) {
    return `${path}.partial-${(0,external_node_crypto_namespaceObject.randomBytes)(6).toString('hex')}`;
}
function sidecarPath(path) {
    return `${path}.http.json`;
}
async function removeCached(path) {
    await (0,external_node_fs_promises_namespaceObject.rm)(path, { force: true });
    await (0,external_node_fs_promises_namespaceObject.rm)(sidecarPath(path), { force: true });
}
async function statFile(path) {
    try {
        const info = await (0,external_node_fs_promises_namespaceObject.stat)(path);
        return info.isFile() ? info : undefined;
    }
    catch {
        return undefined;
    }
}
function mismatch(key, source, actual, what) {
    return new FetchError(key, source.display, `SHA-256 mismatch: expected ${source.sha256}, got ${actual}; ${what}`);
}
/**
 * Write a file through a partial name that the cleanup stack knows: `write`
 * fills it; it is renamed to `path` only when `write` resolves true.
 */
async function viaPartial(ctx, path, write) {
    const partial = partialPath(path);
    const entry = ctx.cleanup.register({ kind: 'path', path: partial });
    try {
        const keep = await write(partial);
        if (keep) {
            await (0,external_node_fs_promises_namespaceObject.rename)(partial, path);
            ctx.cleanup.forget(entry);
        }
        else {
            await ctx.cleanup.release(entry);
        }
        return keep;
    }
    catch (error) {
        await ctx.cleanup.release(entry);
        throw error;
    }
}
// ---------------------------------------------------------------------------
// file: and plain paths
async function copyLocal(ctx, key, source, path) {
    let original;
    try {
        original = await (0,external_node_fs_promises_namespaceObject.stat)(source.location);
    }
    catch (error) {
        const code = error.code;
        throw new FetchError(key, source.display, code === 'ENOENT' ? `${source.location} does not exist` : error.message);
    }
    if (!original.isFile())
        throw new FetchError(key, source.display, `${source.location} is not a regular file`);
    const name = (0,external_node_path_.basename)(path);
    const cached = await statFile(path);
    // utimes() takes seconds as a double: the copy's time can be off by a microsecond.
    if (cached && cached.size === original.size && Math.abs(cached.mtimeMs - original.mtimeMs) < 1) {
        ctx.reporter.info(`${key}: ${name} taken from cache (${formatBytes(cached.size)}, same size and time as ${source.display})`);
        return 'cached';
    }
    const started = Date.now();
    await viaPartial(ctx, path, async (partial) => {
        await (0,external_node_fs_promises_namespaceObject.copyFile)(source.location, partial, external_node_fs_.constants.COPYFILE_FICLONE);
        if (ctx.signal?.aborted)
            throw new AbortedError('interrupted');
        await (0,external_node_fs_promises_namespaceObject.chmod)(partial, FILE_MODE);
        if (source.sha256) {
            const actual = await sha256File(partial, undefined, ctx.signal);
            if (actual !== source.sha256)
                throw mismatch(key, source, actual, 'nothing was copied into the cache');
        }
        // The same time as the original is what tells the next run that the copy is current.
        await (0,external_node_fs_promises_namespaceObject.utimes)(partial, original.atimeMs / 1000, original.mtimeMs / 1000);
        return true;
    });
    ctx.reporter.info(`${key}: copied ${source.display} to ${path} (${formatBytes(original.size)} in ${formatDuration(Date.now() - started)})`);
    return 'downloaded';
}
class HttpStatusError extends Error {
    status;
    constructor(status, statusText) {
        super(status === 404 ? `not found (HTTP 404${statusText ? ` ${statusText}` : ''})` : `the server answered HTTP ${status}${statusText ? ` ${statusText}` : ''}`);
        this.status = status;
        this.name = 'HttpStatusError';
    }
}
/** The connection broke or stalled: worth another try. */
class TransferError extends Error {
    constructor(message) {
        super(message);
        this.name = 'TransferError';
    }
}
async function downloadHttp(ctx, key, source, path) {
    const { reporter } = ctx;
    const name = (0,external_node_path_.basename)(path);
    const cached = await statFile(path);
    const validators = cached ? await readValidators(path) : undefined;
    const headers = {};
    if (cached && validators && validators.url === source.display && validators.size === cached.size) {
        if (validators.etag)
            headers['If-None-Match'] = validators.etag;
        if (validators.lastModified)
            headers['If-Modified-Since'] = validators.lastModified;
    }
    const conditional = Object.keys(headers).length > 0;
    const started = Date.now();
    const result = await withRetries(async () => {
        let response = { status: 304 };
        await viaPartial(ctx, path, async (partial) => {
            response = await httpAttempt(ctx, key, source, partial, headers);
            if (response.status === 304)
                return false;
            if (source.sha256) {
                const actual = response.sha256 ?? (await sha256File(partial, undefined, ctx.signal));
                if (actual !== source.sha256)
                    throw mismatch(key, source, actual, 'the download was deleted');
            }
            await (0,external_node_fs_promises_namespaceObject.chmod)(partial, FILE_MODE);
            // Validators of the old file must not vouch for the new one, not even for a moment.
            await (0,external_node_fs_promises_namespaceObject.rm)(sidecarPath(path), { force: true });
            return true;
        });
        return response;
    }, {
        isTransient: isTransientHttpFailure,
        describe: (error) => scrub(source, describeError(error)),
        signal: ctx.signal,
        onRetry: (reason, attempt, delayMs) => reporter.warning(`${key}: downloading ${source.display} failed (attempt ${attempt} of ${RETRY_ATTEMPTS}): ${reason}; retrying in ${formatDuration(delayMs)}`),
    });
    if (result.status === 304) {
        if (!cached || !conditional)
            throw new FetchError(key, source.display, 'the server answered 304 Not Modified to a request that was not conditional');
        reporter.info(`${key}: ${name} revalidated, unchanged on the server (HTTP 304; ${formatBytes(cached.size)} from cache)`);
        return 'revalidated';
    }
    if (result.etag || result.lastModified) {
        const fresh = { url: source.display, size: result.bytes, etag: result.etag, lastModified: result.lastModified };
        await (0,external_node_fs_promises_namespaceObject.writeFile)(sidecarPath(path), `${JSON.stringify(fresh)}\n`, { mode: FILE_MODE });
    }
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    reporter.info(`${key}: downloaded ${source.display} to ${path} (${formatBytes(result.bytes)} in ${formatDuration(Date.now() - started)}, ${formatBytes(result.bytes / seconds)}/s)`);
    return 'downloaded';
}
async function readValidators(path) {
    try {
        const parsed = JSON.parse(await (0,external_node_fs_promises_namespaceObject.readFile)(sidecarPath(path), 'utf8'));
        if (typeof parsed.url !== 'string' || typeof parsed.size !== 'number')
            return undefined;
        return {
            url: parsed.url,
            size: parsed.size,
            etag: typeof parsed.etag === 'string' ? parsed.etag : undefined,
            lastModified: typeof parsed.lastModified === 'string' ? parsed.lastModified : undefined,
        };
    }
    catch {
        return undefined;
    }
}
/** One GET into `partial`: the Downloader when one is given, Node's fetch otherwise. */
async function httpAttempt(ctx, key, source, partial, conditionalHeaders) {
    if (ctx.download) {
        const response = await ctx.download(source.location, partial, conditionalHeaders);
        if (response.status === 304)
            return { status: 304 };
        const info = await (0,external_node_fs_promises_namespaceObject.stat)(partial);
        return { status: 200, bytes: info.size, etag: response.etag, lastModified: response.lastModified };
    }
    // fetch() refuses URLs with credentials: they travel as a Basic header instead.
    const url = new URL(source.location);
    const headers = { ...conditionalHeaders };
    if (url.username || url.password) {
        const user = decodeURIComponent(url.username);
        const password = decodeURIComponent(url.password);
        headers.Authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
        url.username = '';
        url.password = '';
    }
    const controller = new AbortController();
    const onAbort = () => controller.abort(ctx.signal?.reason);
    ctx.signal?.addEventListener('abort', onAbort, { once: true });
    let stalled = false;
    let stallTimer;
    const armStallTimer = () => {
        clearTimeout(stallTimer);
        stallTimer = setTimeout(() => {
            stalled = true;
            controller.abort();
        }, STALL_TIMEOUT_MS);
    };
    armStallTimer();
    const file = await (0,external_node_fs_promises_namespaceObject.open)(partial, 'wx', FILE_MODE);
    try {
        const response = await fetch(url, { headers, signal: controller.signal, redirect: 'follow' });
        if (response.status === 304) {
            await response.body?.cancel();
            return { status: 304 };
        }
        if (!response.ok || response.body === null) {
            await response.body?.cancel();
            throw new HttpStatusError(response.status, response.statusText);
        }
        const lengthHeader = response.headers.get('content-length');
        const total = lengthHeader !== null && /^[0-9]+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
        const progress = throttled(fetch_PROGRESS_INTERVAL_MS, (message) => ctx.reporter.progress('fetch', message));
        const started = Date.now();
        const hash = (0,external_node_crypto_namespaceObject.createHash)('sha256');
        let bytes = 0;
        progress(`${key}: downloading ${source.display}${total === undefined ? '' : ` (${formatBytes(total)})`}`, true);
        for await (const chunk of response.body) {
            armStallTimer();
            await file.write(chunk);
            hash.update(chunk);
            bytes += chunk.length;
            const rate = bytes / Math.max((Date.now() - started) / 1000, 0.001);
            progress(total === undefined
                ? `${key}: ${formatBytes(bytes)}, ${formatBytes(rate)}/s`
                : `${key}: ${formatBytes(bytes)} of ${formatBytes(total)} (${Math.floor((100 * bytes) / Math.max(total, 1))}%), ${formatBytes(rate)}/s`);
        }
        if (total !== undefined && bytes !== total) {
            throw new TransferError(`the connection closed after ${formatBytes(bytes)} of ${formatBytes(total)}`);
        }
        return {
            status: 200,
            bytes,
            etag: response.headers.get('etag') ?? undefined,
            lastModified: response.headers.get('last-modified') ?? undefined,
            sha256: hash.digest('hex'),
        };
    }
    catch (error) {
        if (stalled && !ctx.signal?.aborted)
            throw new TransferError(`no data for ${formatDuration(STALL_TIMEOUT_MS)}`);
        throw error;
    }
    finally {
        clearTimeout(stallTimer);
        ctx.signal?.removeEventListener('abort', onAbort);
        await file.close();
    }
}
const TRANSIENT_CODES = new Set([
    'ECONNRESET',
    'ECONNREFUSED',
    'ECONNABORTED',
    'ETIMEDOUT',
    'EPIPE',
    'EHOSTUNREACH',
    'ENETUNREACH',
    'EAI_AGAIN',
    'UND_ERR_SOCKET',
    'UND_ERR_CLOSED',
    'UND_ERR_CONNECT_TIMEOUT',
    'UND_ERR_HEADERS_TIMEOUT',
    'UND_ERR_BODY_TIMEOUT',
]);
/** 5xx, 408, 429, a broken or refused connection, a stall: retried. Other 4xx and local errors: not. */
function isTransientHttpFailure(error) {
    if (error instanceof FetchError)
        return false;
    if (error instanceof HttpStatusError)
        return error.status >= 500 || error.status === 408 || error.status === 429;
    if (error instanceof TransferError)
        return true;
    // @actions/tool-cache's HTTPError carries the status.
    const status = error?.httpStatusCode;
    if (typeof status === 'number')
        return status >= 500 || status === 408 || status === 429;
    for (let cause = error; cause instanceof Error; cause = cause.cause) {
        const code = cause.code;
        if (code !== undefined && TRANSIENT_CODES.has(code))
            return true;
    }
    return false;
}
/** fetch() says only "fetch failed"; the reason is in its causes. */
function describeError(error) {
    if (error instanceof CommandError)
        return describeRsyncFailure(error);
    if (!(error instanceof Error))
        return String(error);
    const parts = [];
    for (let cause = error; cause instanceof Error && parts.length < 4; cause = cause.cause) {
        if (!parts.includes(cause.message))
            parts.push(cause.message);
    }
    return parts.join(': ');
}
function scrub(source, text) {
    const password = /^[a-z]+:\/\/[^/@:]*:([^/@]*)@/i.exec(source.uri)?.[1];
    if (!password)
        return text;
    let decoded = password;
    try {
        decoded = decodeURIComponent(password);
    }
    catch {
        // Keep it as written.
    }
    return scrubSecrets(text, [...new Set([password, decoded])]);
}
// ---------------------------------------------------------------------------
// rsync:
/** rsync writes a temporary file and renames it; its size-and-time check skips what is unchanged. */
function rsyncCommand(uri, path) {
    return ['rsync', '--no-motd', '--times', `--timeout=300`, uri, path];
}
async function fetchRsync(ctx, key, source, path) {
    const { reporter } = ctx;
    const { uri, password } = splitRsyncCredentials(source.location);
    const secrets = password === undefined ? [] : secretVariants(source.location, password);
    const argv = rsyncCommand(uri, path);
    const before = await statFile(path);
    const started = Date.now();
    try {
        await withRetries(() => ctx.host.run(argv, {
            env: password === undefined ? process.env : { ...process.env, RSYNC_PASSWORD: password },
            ...(ctx.signal ? { signal: ctx.signal } : {}),
            onLine: (line) => reporter.output(scrubSecrets(line, secrets)),
        }), {
            isTransient: isTransientRsyncFailure,
            describe: (error) => scrubSecrets(describeRsyncFailure(error), secrets),
            signal: ctx.signal,
            onRetry: (reason, attempt, delayMs) => reporter.warning(`${key}: ${formatCommand(argv)} failed (attempt ${attempt} of ${RETRY_ATTEMPTS}): ${reason}; retrying in ${formatDuration(delayMs)}`),
        });
    }
    catch (error) {
        if (error instanceof CommandError)
            throw new FetchError(key, source.display, scrubSecrets(describeRsyncFailure(error), secrets));
        throw error;
    }
    const after = await statFile(path);
    if (!after)
        throw new FetchError(key, source.display, `rsync finished, but ${path} is not a file`);
    if ((after.mode & 0o777) !== FILE_MODE)
        await (0,external_node_fs_promises_namespaceObject.chmod)(path, FILE_MODE);
    if (source.sha256) {
        const actual = await sha256File(path, undefined, ctx.signal);
        if (actual !== source.sha256) {
            await removeCached(path);
            throw mismatch(key, source, actual, 'the fetched file was deleted');
        }
    }
    const name = (0,external_node_path_.basename)(path);
    const changed = !before || before.ino !== after.ino || before.size !== after.size || before.mtimeMs !== after.mtimeMs;
    if (!changed) {
        reporter.info(`${key}: ${name} taken from cache (${formatBytes(after.size)}, unchanged on ${source.display})`);
        return 'cached';
    }
    reporter.info(`${key}: downloaded ${source.display} to ${path} (${formatBytes(after.size)} in ${formatDuration(Date.now() - started)})`);
    return 'downloaded';
}
//# sourceMappingURL=fetch.js.map
;// CONCATENATED MODULE: ./build/src/pipeline/post-build.js

/**
 * `post-build-command <image>`: the command runs through the shell (so a
 * value like `notify --channel images` works) with the image's file name as
 * its first argument, in the folder that holds the image.
 */
async function runPostBuildCommand(ctx, command, imagePath) {
    await ctx.host.run(['sh', '-c', `${command} "$@"`, 'post-build-command', (0,external_node_path_.basename)(imagePath)], {
        cwd: (0,external_node_path_.dirname)(imagePath),
        onLine: (line) => ctx.reporter.output(line),
    });
}
//# sourceMappingURL=post-build.js.map
;// CONCATENATED MODULE: ./build/src/pipeline/resources.js
function describeResource(resource) {
    switch (resource.kind) {
        case 'domain':
            return `libvirt domain ${resource.name} (${resource.uri})`;
        case 'loop':
            return `loop devices backed by ${resource.backingFile}`;
        case 'mount':
            return `mount at ${resource.path}`;
        case 'path':
            return resource.path;
        case 'acl':
            return `ACL entry ${resource.entry} on ${resource.path}`;
    }
}
/** Undo one resource. Idempotent: undoing what is already gone succeeds. */
async function undoResource(host, resource) {
    switch (resource.kind) {
        case 'domain': {
            const state = await host.run(['virsh', '-c', resource.uri, 'domstate', resource.name], {
                allowFailure: true,
                quiet: true,
                captureStdout: true,
            });
            if (state.exitCode !== 0)
                return;
            if (!/shut off/.test(state.stdout)) {
                await host.run(['virsh', '-c', resource.uri, 'destroy', resource.name], { allowFailure: true });
            }
            await host.run(['virsh', '-c', resource.uri, 'undefine', resource.name], { allowFailure: true });
            const after = await host.run(['virsh', '-c', resource.uri, 'domstate', resource.name], {
                allowFailure: true,
                quiet: true,
                captureStdout: true,
            });
            if (after.exitCode === 0)
                throw new Error(`libvirt domain ${resource.name} is still defined`);
            return;
        }
        case 'loop': {
            for (const device of await loopDevicesOf(host, resource.backingFile)) {
                await host.run(['losetup', '--detach', device], { root: true });
            }
            return;
        }
        case 'mount': {
            if (!host.isMounted(resource.path))
                return;
            const result = await host.run(['umount', resource.path], { root: true, allowFailure: true });
            if (result.exitCode !== 0 && host.isMounted(resource.path)) {
                // Something still holds it (a shell in the folder): detach it lazily rather than leave it.
                await host.run(['umount', '--lazy', resource.path], { root: true });
            }
            return;
        }
        case 'path':
            await host.remove(resource.path);
            return;
        case 'acl':
            await host.run(['setfacl', '-x', resource.entry, resource.path], { root: true, allowFailure: true });
            return;
    }
}
async function loopDevicesOf(host, backingFile) {
    const result = await host.run(['losetup', '--associated', backingFile, '--noheadings', '--output', 'NAME'], {
        captureStdout: true,
        quiet: true,
        readOnly: true,
        allowFailure: true,
    });
    return result.stdout
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line.startsWith('/dev/'));
}
/**
 * The undo stack of a build. Every resource is registered before it is
 * created, so that an interruption at any moment leaves nothing behind.
 */
class CleanupStack {
    host;
    onChange;
    entries = [];
    constructor(host, onChange) {
        this.host = host;
        this.onChange = onChange;
    }
    register(resource) {
        const entry = { resource };
        this.entries.push(entry);
        this.notify();
        return entry;
    }
    /** Undo one resource now (the normal path) and forget it. */
    async release(entry) {
        await undoResource(this.host, entry.resource);
        this.forget(entry);
    }
    /** The resource became a result (a file moved to its final name): nothing to undo. */
    forget(entry) {
        const index = this.entries.indexOf(entry);
        if (index >= 0)
            this.entries.splice(index, 1);
        this.notify();
    }
    pending() {
        return this.entries.map((entry) => entry.resource);
    }
    /**
     * Undo everything still registered, newest first. Returns the failures,
     * already described; what could not be undone stays registered, so that
     * the action's post step can try again.
     */
    async unwind() {
        const failures = [];
        for (const entry of [...this.entries].reverse()) {
            try {
                await undoResource(this.host, entry.resource);
                this.forget(entry);
            }
            catch (error) {
                failures.push(`could not remove ${describeResource(entry.resource)}: ${error.message}`);
            }
        }
        return failures;
    }
    notify() {
        this.onChange?.(this.pending());
    }
}
//# sourceMappingURL=resources.js.map
;// CONCATENATED MODULE: ./build/src/pipeline/scrub.js





/** What the original removes after an install, relative to the root of the installed system. */
const INSTALLER_LOG_PATTERNS = [
    'root/anaconda-ks.cfg',
    'root/install.log*',
    'var/adm/autoinstall',
    'var/lib/YaST2',
    'var/log/anaconda',
    'var/log/installer',
    'var/log/YaST2',
];
/** What the original prints with installer-logs before removing. */
const PRINTED_LOG_PATTERNS = [
    'root/anaconda-ks.cfg',
    'var/adm/autoinstall/logs/*',
    'var/log/anaconda.*',
    'var/log/anaconda/*',
    'var/log/installer/syslog',
    'var/log/YaST2/y2log',
];
class ScrubError extends Error {
    constructor(message) {
        super(message);
        this.name = 'ScrubError';
    }
}
/** Read the partition table: exactly one partition, as the original requires. */
async function singlePartition(ctx, diskPath) {
    const result = await ctx.host.run(['sfdisk', '--json', diskPath], { captureStdout: true, readOnly: true, allowFailure: true });
    if (result.exitCode !== 0 || result.stdout.trim() === '') {
        throw new ScrubError(`Expected exactly one partition in ${diskPath}, but found no partitions (no partition table: did the installer write the disk?).`);
    }
    const table = JSON.parse(result.stdout);
    const sectorSize = table.partitiontable.sectorsize ?? 512;
    const partitions = table.partitiontable.partitions ?? [];
    if (partitions.length !== 1) {
        const found = partitions.length
            ? `${partitions.length} partitions (${partitions.map((p) => `${p.node}: ${formatBytes(p.size * sectorSize)}`).join(', ')})`
            : 'no partitions';
        throw new ScrubError(`Expected exactly one partition in ${diskPath}, but found ${found}.`);
    }
    return { offset: partitions[0].start * sectorSize, size: partitions[0].size * sectorSize };
}
async function allocatedBytes(ctx, path) {
    return (await ctx.host.stat(path)).blocks * 512;
}
/**
 * Mount the single partition, remove the installer logs, and zero its free
 * space so that the image compresses: by discard (fstrim through the loop
 * device punches holes into the raw file) or by zerofree.
 */
async function scrubImage(ctx, diskPath) {
    const { host, reporter, spec, cleanup } = ctx;
    const partition = await singlePartition(ctx, diskPath);
    const loopEntry = cleanup.register({ kind: 'loop', backingFile: diskPath });
    const attach = await host.run([
        'losetup',
        '--find',
        '--show',
        '--offset',
        String(partition.offset),
        '--sizelimit',
        String(partition.size),
        diskPath,
    ], { root: true, captureStdout: true });
    const loop = attach.stdout.trim();
    const filesystem = await filesystemType(ctx, loop);
    const mountpoint = await host.makeTempDir((0,external_node_path_.join)((0,external_node_os_namespaceObject.tmpdir)(), 'image-factory.'));
    const dirEntry = cleanup.register({ kind: 'path', path: mountpoint });
    let mountEntry = cleanup.register({ kind: 'mount', path: mountpoint });
    await host.run(['mount', loop, mountpoint], { root: true });
    const removed = await removeInstallerLogs(ctx, mountpoint);
    let zeroing = 'none';
    const zerofreeCan = /^ext[234]$/.test(filesystem);
    let discard = spec.zeroFreeSpace === 'discard';
    if (spec.zeroFreeSpace === 'zerofree' && !zerofreeCan) {
        reporter.warning(`zerofree cannot zero a ${filesystem} file system: discarding its free space instead`);
        discard = true;
    }
    if (discard) {
        // Trim on a fresh mount: unmounting commits the removals, and no journal
        // or old tree root (ext4, Btrfs) still holds the removed logs' blocks,
        // which a trim right after the removal would leave with their contents.
        await cleanup.release(mountEntry);
        mountEntry = cleanup.register({ kind: 'mount', path: mountpoint });
        await host.run(['mount', loop, mountpoint], { root: true });
        const before = await allocatedBytes(ctx, diskPath);
        const trim = await host.run(['fstrim', '--verbose', mountpoint], { root: true, allowFailure: true });
        const after = await allocatedBytes(ctx, diskPath);
        if (trim.exitCode === 0 && after < before) {
            zeroing = 'discard';
            reporter.info(`discarded free space: the raw file shrank from ${formatBytes(before)} to ${formatBytes(after)} on disk`);
        }
        else {
            const why = trim.exitCode === 0 ? 'no space was released' : trim.lastLines.join(' ');
            reporter.warning(`discarding free space did not punch holes into ${diskPath} (${why}); ${zerofreeCan ? 'falling back to zerofree' : `free space of the ${filesystem} file system is left as it is`}`);
        }
    }
    await cleanup.release(mountEntry);
    await cleanup.release(dirEntry);
    if (spec.zeroFreeSpace !== 'none' && zeroing === 'none' && zerofreeCan) {
        await host.run(['zerofree', '-v', loop], { root: true, onLine: progressOf(ctx) });
        zeroing = 'zerofree';
    }
    await cleanup.release(loopEntry);
    const leftover = await loopDevicesOf(host, diskPath);
    if (leftover.length)
        throw new ScrubError(`loop devices still attached to ${diskPath}: ${leftover.join(', ')}`);
    return { filesystem, removed, zeroing, allocatedBytes: await allocatedBytes(ctx, diskPath) };
}
function progressOf(ctx) {
    let last = 0;
    return (line) => {
        // zerofree -v prints "done/total" block counts as it goes.
        const match = /^(\d+)\/(\d+)$/.exec(line.trim());
        if (!match)
            return;
        const now = Date.now();
        if (now - last < 10_000)
            return;
        last = now;
        ctx.reporter.progress('scrub', `zerofree ${((100 * Number(match[1])) / Number(match[2])).toFixed(0)}%`);
    };
}
async function filesystemType(ctx, device) {
    const result = await ctx.host.run(['blkid', '--probe', '--output', 'value', '--match-tag', 'TYPE', device], {
        root: true,
        captureStdout: true,
        allowFailure: true,
        quiet: true,
    });
    const type = result.stdout.trim();
    if (!type)
        throw new ScrubError(`the partition holds no file system that blkid recognises (${device})`);
    return type;
}
/**
 * The entries of a folder of the installed system. Its folders may be
 * private to root (/root is 700): a normal user lists them through sudo.
 */
async function listFolder(ctx, dir) {
    if (ctx.host.isRoot) {
        try {
            return (await (0,external_node_fs_promises_namespaceObject.readdir)(dir, { withFileTypes: true })).map((entry) => ({ path: (0,external_node_path_.join)(dir, entry.name), isDirectory: entry.isDirectory() }));
        }
        catch {
            return [];
        }
    }
    const listing = await ctx.host.run(['ls', '-1Ap', '--', dir], { root: true, captureStdout: true, quiet: true, allowFailure: true });
    if (listing.exitCode !== 0)
        return [];
    return listing.stdout
        .split('\n')
        .filter((name) => name !== '')
        .map((name) => ({ path: (0,external_node_path_.join)(dir, name.replace(/\/$/, '')), isDirectory: name.endsWith('/') }));
}
/** Expand the simple patterns above (a `*` in the last component only). */
async function expand(ctx, root, pattern) {
    const slash = pattern.lastIndexOf('/');
    const dir = (0,external_node_path_.join)(root, pattern.slice(0, slash));
    const leaf = pattern.slice(slash + 1);
    const regex = new RegExp(`^${leaf.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
    return (await listFolder(ctx, dir))
        .filter((entry) => regex.test(entry.path.slice(dir.length + 1)))
        .sort((a, b) => a.path.localeCompare(b.path));
}
async function removeInstallerLogs(ctx, root) {
    const { host, reporter, spec } = ctx;
    if (spec.installerLogs) {
        for (const pattern of PRINTED_LOG_PATTERNS) {
            for (const { path, isDirectory } of await expand(ctx, root, pattern)) {
                if (isDirectory)
                    continue;
                const content = host.isRoot
                    ? await (0,external_node_fs_promises_namespaceObject.readFile)(path, 'utf8')
                    : (await host.run(['cat', '--', path], { root: true, captureStdout: true, quiet: true })).stdout;
                reporter.info(`Content of /${(0,external_node_path_.relative)(root, path)}:\n${content}`);
            }
        }
    }
    const removed = [];
    for (const pattern of INSTALLER_LOG_PATTERNS) {
        for (const { path } of await expand(ctx, root, pattern)) {
            const name = `/${(0,external_node_path_.relative)(root, path)}`;
            reporter.info(`Removing ${name}`);
            await host.run(['rm', '--recursive', '--force', '--one-file-system', '--', path], { root: true, quiet: host.isRoot });
            removed.push(name);
        }
    }
    return removed;
}
//# sourceMappingURL=scrub.js.map
;// CONCATENATED MODULE: ./build/src/pipeline/staging.js



function outputPaths(spec) {
    const image = (0,external_node_path_.join)(spec.outputDir, `${spec.stem}.${spec.format}`);
    return {
        image,
        checksum: `${image}.sha256sum`,
        raw: spec.format === 'qcow2' && spec.keepRaw ? (0,external_node_path_.join)(spec.outputDir, `${spec.stem}.raw`) : undefined,
        consoleLog: (0,external_node_path_.join)(spec.outputDir, `${spec.stem}.console.log`),
    };
}
/** Checks of the output folder: nothing exists under a final name, the folder is writable. */
function checkOutputs(spec) {
    const paths = outputPaths(spec);
    for (const path of [paths.image, paths.checksum, paths.raw]) {
        if (path && (0,external_node_fs_.existsSync)(path)) {
            throw new UsageError(`${path} already exists; image-factory never overwrites a finished image. Move it away or build in another folder.`);
        }
    }
    try {
        (0,external_node_fs_.accessSync)(spec.outputDir, external_node_fs_.constants.W_OK);
    }
    catch {
        throw new UsageError(`the output folder ${spec.outputDir} does not exist or is not writable.`);
    }
}
/** `.<stem>.partial-XXXXXX` in the output folder: removed with all it holds unless the build publishes. */
async function openStaging(ctx) {
    const { spec, host, cleanup } = ctx;
    const prefix = (0,external_node_path_.join)(spec.outputDir, `.${spec.stem}.partial-`);
    const dir = await host.makeTempDir(prefix);
    const entry = cleanup.register({ kind: 'path', path: dir });
    // qemu under qemu:///system runs as its own user and must reach the disk.
    await host.chmod(dir, 0o755);
    const raw = (0,external_node_path_.join)(dir, `${spec.stem}.raw`);
    return {
        dir,
        raw,
        image: spec.format === 'qcow2' ? (0,external_node_path_.join)(dir, `${spec.stem}.qcow2`) : raw,
        checksum: (0,external_node_path_.join)(dir, `${spec.stem}.${spec.format}.sha256sum`),
        entry,
    };
}
/**
 * Link the finished files to their final names — the raw file kept on
 * request, the image, and the checksum last, once the image is whole — and
 * remove the staging folder. Nothing under a final name is ever overwritten.
 */
async function publishImage(ctx, staging, paths) {
    if (paths.raw)
        await publishFile(ctx, staging.raw, paths.raw);
    await publishFile(ctx, staging.image, paths.image);
    await publishFile(ctx, staging.checksum, paths.checksum);
    ctx.reporter.info(`Successfully created ${paths.image}`);
    await ctx.cleanup.release(staging.entry);
}
async function publishFile(ctx, from, to) {
    try {
        await ctx.host.publish(from, to);
    }
    catch (error) {
        if (error.code === 'EEXIST') {
            throw new Error(`${to} appeared while the build ran; it was left untouched and this build's result discarded`);
        }
        throw error;
    }
}
//# sourceMappingURL=staging.js.map
;// CONCATENATED MODULE: ./build/src/pipeline/build.js

















/** A build that failed in a step; cleanup has already run. The step's error is the `cause`. */
class BuildError extends Error {
    step;
    cleanupFailures;
    result;
    constructor(step, cause, cleanupFailures = [], 
    /** The finished image, when the failure came after it was published (upload, post-build): it stays. */
    result) {
        super(`${step} step failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
        this.step = step;
        this.cleanupFailures = cleanupFailures;
        this.result = result;
        this.name = 'BuildError';
    }
}
/** kvm or tcg for this build, as `accelerator` asks and the host allows; a UsageError when kvm is asked for and unusable. */
function chooseBuildAccelerator(spec, reporter, kvmUsable) {
    const status = kvmUsable === undefined ? kvmStatus() : { usable: kvmUsable, reason: 'disabled by the caller' };
    const chosen = chooseAccelerator(spec.accelerator, status);
    if (chosen.error)
        throw new UsageError(chosen.error);
    if (chosen.warning)
        reporter.warning(chosen.warning);
    return chosen.accelerator;
}
/**
 * The whole build, step by step. Everything created is registered for undo
 * before it is created and undone on any failure or interruption.
 */
async function buildImage(options) {
    const { spec, reporter } = options;
    const accelerator = chooseBuildAccelerator(spec, reporter, options.kvmUsable);
    if (!options.dryRun)
        checkOutputs(spec);
    if (!options.dryRun)
        checkHost(spec);
    const run = new BuildRun(options);
    const { ctx } = run;
    const paths = outputPaths(spec);
    try {
        const installer = await run.step('fetch', () => fetchInstaller(ctx));
        const staging = await openStaging(ctx);
        await run.step('disk', () => createRawDisk(ctx, staging.raw));
        const install = { domain: `${spec.stem}-${ctx.host.uniqueSuffix(3)}`, diskPath: staging.raw, consoleLog: paths.consoleLog, staging: staging.dir };
        await run.step('install', () => installSystem(ctx, install, installer, accelerator));
        const scrubbed = await run.step('scrub', () => scrubImage(ctx, staging.raw));
        if (spec.format === 'qcow2')
            await run.step('convert', () => convertToQcow2(ctx, staging.raw, staging.image));
        const sha256 = await run.step('checksum', () => writeChecksum(ctx, staging.image, staging.checksum, `${spec.stem}.${spec.format}`));
        // Before anything is published or uploaded: an image that does not boot goes nowhere.
        const boot = spec.bootTest.enabled ? await run.step('boot-test', () => bootTest(ctx, staging.image, accelerator)) : undefined;
        await run.step('publish', () => publishImage(ctx, staging, paths));
        const result = await run.published(paths, { sha256, accelerator, scrubbed, installer, boot });
        result.uploads = await run.step('upload', () => uploadImage(ctx, { image: paths.image, checksum: paths.checksum }));
        if (spec.postBuildCommand)
            await run.step('post-build', () => runPostBuildCommand(ctx, spec.postBuildCommand ?? '', paths.image));
        return result;
    }
    catch (error) {
        throw await run.fail(error, paths);
    }
}
/** One build in progress: its context, the steps it has done, and what to say when it fails. */
class BuildRun {
    ctx;
    steps = [];
    current = 'fetch';
    result;
    constructor(options) {
        const host = options.host ?? (options.dryRun ? dryRunHost(options.reporter, options.spec) : new SystemHost(options.reporter, options.signal));
        const cleanup = new CleanupStack(host.uninterruptible(), options.onResources);
        this.ctx = { spec: options.spec, host, reporter: options.reporter, cleanup, signal: options.signal, download: options.download };
    }
    /** Run one step: reported as it starts and ends, and timed. */
    async step(name, work) {
        const { reporter } = this.ctx;
        this.current = name;
        const started = Date.now();
        reporter.stepStarted(name);
        try {
            const value = await work();
            this.steps.push({ step: name, durationMs: Date.now() - started });
            reporter.stepFinished(name, Date.now() - started, true);
            return value;
        }
        catch (error) {
            reporter.stepFinished(name, Date.now() - started, false);
            throw error;
        }
    }
    /** The result of a published image; it stays, and is reported, whatever happens to the upload. */
    async published(paths, outcome) {
        const info = await this.ctx.host.stat(paths.image);
        this.result = {
            image: `${this.ctx.spec.stem}.${this.ctx.spec.format}`,
            imagePath: paths.image,
            format: this.ctx.spec.format,
            size: info.size,
            diskUsage: info.blocks * 512,
            sha256: outcome.sha256,
            checksumPath: paths.checksum,
            rawPath: paths.raw,
            consoleLog: paths.consoleLog,
            accelerator: outcome.accelerator,
            removedLogs: outcome.scrubbed.removed,
            zeroing: outcome.scrubbed.zeroing,
            uploads: [],
            cacheHit: !outcome.installer.downloaded,
            installer: outcome.installer,
            bootSeconds: outcome.boot?.seconds,
            cloudInitFinished: outcome.boot?.cloudInitFinished,
            steps: this.steps,
        };
        return this.result;
    }
    /** Undo everything still registered and say which step failed. */
    async fail(error, paths) {
        const { reporter, cleanup, host } = this.ctx;
        if (error instanceof UploadError && this.result)
            this.result.uploads = error.outcomes;
        const failures = await cleanup.unwind();
        for (const failure of failures)
            reporter.warning(failure);
        if (host.live && this.steps.some((done) => done.step === 'disk') && (0,external_node_fs_.existsSync)(paths.consoleLog)) {
            reporter.info(`the installer's console output is in ${paths.consoleLog}`);
        }
        return new BuildError(error instanceof UploadError ? 'upload' : this.current, error, failures, this.result);
    }
}
//# sourceMappingURL=build.js.map
;// CONCATENATED MODULE: ./build/src/cli/describe-result.js

/** The finished build in a few lines for the terminal. */
function describeResult(result) {
    const lines = [
        `image:       ${result.imagePath}`,
        `size:        ${formatBytes(result.size)} (${formatBytes(result.diskUsage)} on disk)`,
        `sha256:      ${result.sha256}`,
        `accelerator: ${result.accelerator}`,
        ...(result.bootSeconds !== undefined
            ? [`boot test:   came up in ${result.bootSeconds.toFixed(1)} s${result.cloudInitFinished ? ', cloud-init finished' : ''}`]
            : []),
        `steps:       ${result.steps.map((s) => `${s.step} ${formatDuration(s.durationMs)}`).join(', ')}`,
    ];
    return lines.join('\n');
}
//# sourceMappingURL=describe-result.js.map
;// CONCATENATED MODULE: ./build/src/pipeline/log-reporter.js




/** Python logging's asctime: `2026-11-26 12:34:56,789`, local time. */
function asctime(date = new Date()) {
    const pad = (n, width = 2) => String(n).padStart(width, '0');
    return (`${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
        `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())},${pad(date.getMilliseconds(), 3)}`);
}
/**
 * Log lines in the original's format, `<time> <name> [<pid>] <LEVEL>: <message>`,
 * to stderr and, when enabled, to a log file.
 */
class LogReporter {
    name;
    write;
    fd;
    constructor(name = 'image-factory', write = (text) => process.stderr.write(text)) {
        this.name = name;
        this.write = write;
    }
    openLogFile(path) {
        this.fd = (0,external_node_fs_.openSync)(path, 'w', 0o644);
    }
    close() {
        if (this.fd !== undefined)
            (0,external_node_fs_.closeSync)(this.fd);
        this.fd = undefined;
    }
    log(level, message) {
        const line = `${asctime()} ${this.name} [${process.pid}] ${level}: ${message}\n`;
        this.write(line);
        if (this.fd !== undefined)
            (0,external_node_fs_.writeSync)(this.fd, line);
    }
    info(message) {
        this.log('INFO', message);
    }
    notice(message) {
        this.log('INFO', message);
    }
    warning(message) {
        this.log('WARNING', message);
    }
    error(message) {
        this.log('ERROR', message);
    }
    command(argv) {
        this.log('INFO', `Calling ${formatCommand(argv)}`);
    }
    output(line) {
        this.log('INFO', `  ${line}`);
    }
    stepStarted(step) {
        this.log('INFO', `== ${step}: ${STEP_TITLES[step]}`);
    }
    stepFinished(step, durationMs, ok) {
        this.log(ok ? 'INFO' : 'ERROR', `== ${step} ${ok ? 'done' : 'FAILED'} after ${formatDuration(durationMs)}`);
    }
    progress(step, message) {
        this.log('INFO', `${step}: ${message}`);
    }
}
//# sourceMappingURL=log-reporter.js.map
;// CONCATENATED MODULE: ./build/src/cli/main.js












const EXIT_OK = 0;
const EXIT_BUILD_FAILED = 1;
const EXIT_USAGE = 2;
const DESCRIPTION = `Build a golden Linux VM image with the distribution's own unattended installer.

Runs, for the IMAGE section of the configuration: fetch the netboot kernel and
initrd (cached) -> create a raw disk -> install with virt-install (preseed,
Kickstart or AutoYAST answer file) -> remove installer logs and zero free space
-> convert to qcow2 -> write <file>.sha256sum -> upload with rsync -> run the
post-build command. Files are named <IMAGE>-<YYYY-MM-DD>.<format>.

Configuration (INI, later files win): the shipped definitions, then
/etc/image-factory.conf, then ~/.config/image-factory.conf — or only the file
named by IMAGE_FACTORY_CONFIG.`;
const EPILOG = `
Examples:
  image-factory --print-config Debian-12-server   show the resolved settings
  image-factory --dry-run Debian-12-server        show every command, run none
  image-factory -f qcow2 Debian-12-server         build Debian-12-server-<date>.qcow2

Exit codes: 0 built, 1 a build step failed (everything it created was removed),
2 bad input (nothing was created), 130/143 interrupted (cleaned up).`;
function buildProgram() {
    return new Command('image-factory')
        .description(DESCRIPTION)
        .argument('[image]', 'image to build: a section of the configuration (default: $IMAGE)')
        .option('-c, --cache-dir <dir>', 'cache folder for installer files (default: /var/cache/image-factory as root, ~/.cache/image-factory otherwise)')
        .addOption(new Option('-f, --format <format>', 'image format (default: raw)').choices(['qcow2', 'raw']))
        .option('--image-size <size>', "size of the raw disk, e.g. 4G, '4 GiB', '5 GB' (default: 2G)")
        .option('--mac <mac>', 'MAC address of the installation machine')
        .option('--installer-logs', 'print installer logs and the console into the log output')
        .option('--no-installer-logs', 'do not print installer logs')
        .option('--log-file', 'also write the log to a file (<image>-<date>.log unless --log-filename)')
        .option('--no-log-file', 'do not write a log file')
        .option('--log-filename <file>', 'the log file to write (when logging to a file)')
        .addOption(new Option('--accelerator <name>', 'kvm, tcg (software, slow) or auto (default: kvm when usable)').choices(['auto', 'kvm', 'tcg']))
        .option('--install-timeout <duration>', "stop the installer after this long, e.g. 90m, 3h (default: 3h)")
        .addOption(new Option('--zero-free-space <how>', 'zero free space by discard (fast, falls back to zerofree), zerofree, or none (default: discard)').choices([
        'discard',
        'zerofree',
        'none',
    ]))
        .addOption(new Option('--compress <how>', 'compress qcow2 clusters (default: none)').choices(['none', 'zlib', 'zstd']))
        .option('--no-upload', 'build without uploading to upload_destinations')
        .option('--boot-test', 'boot the finished image in a throw-away VM and fail unless it comes up (before any upload)')
        .option('--no-boot-test', 'do not boot-test the image')
        .option('-o, --output-dir <dir>', 'folder for the image, checksum and logs (default: the current folder)')
        .option('--install-dependencies', 'first install missing host tools (apt-get or dnf), start libvirt if nothing runs it, open a root-only /dev/kvm to the kvm group')
        .option('--print-config', 'print the resolved settings of the image as JSON and exit')
        .option('--dry-run', 'print every command the build would run, and run none')
        .addHelpText('after', EPILOG)
        .showHelpAfterError('(run image-factory --help for the options)')
        .exitOverride()
        .configureOutput({ writeErr: (text) => process.stderr.write(text), writeOut: (text) => process.stdout.write(text) });
}
/** Run the command line; returns the exit code. */
async function main(argv = process.argv.slice(2)) {
    const program = buildProgram();
    try {
        program.parse(argv, { from: 'user' });
    }
    catch (error) {
        if (error instanceof CommanderError) {
            return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
        }
        throw error;
    }
    const options = program.opts();
    const reporter = new LogReporter();
    const image = program.args[0] ?? process.env.IMAGE;
    if (!image) {
        process.stderr.write('image-factory: error: No image specified (give IMAGE as argument or in the IMAGE environment variable).\n');
        return EXIT_USAGE;
    }
    const overrides = {
        cache_dir: options.cacheDir,
        mac: options.mac,
        format: options.format,
        'image-size': options.imageSize,
        'installer-logs': options.installerLogs,
        'log-file': options.logFile,
        'log-filename': options.logFilename,
        accelerator: options.accelerator,
        'install-timeout': options.installTimeout,
        'zero-free-space': options.zeroFreeSpace,
        compress: options.compress,
        'boot-test': options.bootTest,
    };
    let spec;
    try {
        const { config } = loadConfig();
        const knownImages = config.sections();
        const hadSection = applyOverrides(config, image, overrides);
        if (options.printConfig) {
            if (!hadSection)
                throw new UsageError(`No section '${image}' defined in the configuration. Images that exist: ${knownImages.join(', ') || '(none)'}.`);
            process.stdout.write(`${JSON.stringify(resolvedOptions(config, image), null, 2)}\n`);
            return EXIT_OK;
        }
        spec = resolveImageSpec(config, image, {
            outputDir: (0,external_node_path_.resolve)(options.outputDir ?? '.'),
            date: localDate(),
            knownImages,
            hadSection,
            upload: options.upload,
        });
    }
    catch (error) {
        if (error instanceof UsageError) {
            process.stderr.write(`image-factory: error: ${error.message}\n`);
            return EXIT_USAGE;
        }
        throw error;
    }
    if (spec.logFile && !options.dryRun) {
        try {
            reporter.openLogFile(spec.logFile);
        }
        catch (error) {
            process.stderr.write(`image-factory: error: cannot write the log file ${spec.logFile}: ${error.message}\n`);
            return EXIT_USAGE;
        }
    }
    const controller = new AbortController();
    let interruptedBy;
    const onSignal = (signal) => {
        if (interruptedBy) {
            reporter.warning(`${signal} received again: still cleaning up, please wait`);
            return;
        }
        interruptedBy = signal;
        reporter.warning(`${signal} received: stopping the build and cleaning up`);
        controller.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
        if (options.installDependencies && !options.dryRun) {
            checkOutputs(spec);
            // Not interruptible: a package manager killed halfway can leave the host broken.
            await prepareHost(new SystemHost(reporter), reporter);
            if (controller.signal.aborted)
                throw new AbortedError('interrupted while preparing the host');
        }
        const result = await buildImage({ spec, reporter, dryRun: options.dryRun, signal: controller.signal });
        if (options.dryRun)
            reporter.info('Dry run: the commands above were not run, and nothing was created.');
        else
            reporter.info(`Build finished:\n${describeResult(result)}`);
        return EXIT_OK;
    }
    catch (error) {
        if (interruptedBy) {
            reporter.error(`interrupted by ${interruptedBy}; everything the build created was removed`);
            return interruptedBy === 'SIGINT' ? 130 : 143;
        }
        if (error instanceof UsageError) {
            reporter.error(error.message);
            return EXIT_USAGE;
        }
        if (error instanceof HostSetupError) {
            reporter.error(`preparing the host failed: ${error.message}`);
            return EXIT_BUILD_FAILED;
        }
        if (error instanceof BuildError) {
            const cause = error.cause;
            if (cause instanceof AbortedError)
                reporter.error(`${error.step} step interrupted`);
            else
                reporter.error(error.message);
            if (error.cleanupFailures.length)
                reporter.error(`cleanup left something behind: ${error.cleanupFailures.join('; ')}`);
            return EXIT_BUILD_FAILED;
        }
        reporter.error(`unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        return EXIT_BUILD_FAILED;
    }
    finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        reporter.close();
    }
}
//# sourceMappingURL=main.js.map

/***/ })

/******/ });
/************************************************************************/
/******/ // The module cache
/******/ var __webpack_module_cache__ = {};
/******/ 
/******/ // The require function
/******/ function __nccwpck_require__(moduleId) {
/******/ 	// Check if module is in cache
/******/ 	var cachedModule = __webpack_module_cache__[moduleId];
/******/ 	if (cachedModule !== undefined) {
/******/ 		return cachedModule.exports;
/******/ 	}
/******/ 	// Create a new module (and put it into the cache)
/******/ 	var module = __webpack_module_cache__[moduleId] = {
/******/ 		// no module.id needed
/******/ 		// no module.loaded needed
/******/ 		exports: {}
/******/ 	};
/******/ 
/******/ 	// Execute the module function
/******/ 	var threw = true;
/******/ 	try {
/******/ 		__webpack_modules__[moduleId](module, module.exports, __nccwpck_require__);
/******/ 		threw = false;
/******/ 	} finally {
/******/ 		if(threw) delete __webpack_module_cache__[moduleId];
/******/ 	}
/******/ 
/******/ 	// Return the exports of the module
/******/ 	return module.exports;
/******/ }
/******/ 
/************************************************************************/
/******/ /* webpack/runtime/asset-relocator-loader */
/******/ if (typeof __nccwpck_require__ !== 'undefined') __nccwpck_require__.ab = decodeURIComponent(new URL('.', import.meta.url).pathname).slice(import.meta.url.match(/^file:\/\/\/\w:/) ? 1 : 0, -1) + "/";
/******/ 
/******/ /* webpack/runtime/async module */
/******/ (() => {
/******/ 	var webpackQueues = typeof Symbol === "function" ? Symbol("webpack queues") : "__webpack_queues__";
/******/ 	var webpackExports = typeof Symbol === "function" ? Symbol("webpack exports") : "__webpack_exports__";
/******/ 	var webpackError = typeof Symbol === "function" ? Symbol("webpack error") : "__webpack_error__";
/******/ 	var resolveQueue = (queue) => {
/******/ 		if(queue && queue.d < 1) {
/******/ 			queue.d = 1;
/******/ 			queue.forEach((fn) => (fn.r--));
/******/ 			queue.forEach((fn) => (fn.r-- ? fn.r++ : fn()));
/******/ 		}
/******/ 	}
/******/ 	var wrapDeps = (deps) => (deps.map((dep) => {
/******/ 		if(dep !== null && typeof dep === "object") {
/******/ 			if(dep[webpackQueues]) return dep;
/******/ 			if(dep.then) {
/******/ 				var queue = [];
/******/ 				queue.d = 0;
/******/ 				dep.then((r) => {
/******/ 					obj[webpackExports] = r;
/******/ 					resolveQueue(queue);
/******/ 				}, (e) => {
/******/ 					obj[webpackError] = e;
/******/ 					resolveQueue(queue);
/******/ 				});
/******/ 				var obj = {};
/******/ 				obj[webpackQueues] = (fn) => (fn(queue));
/******/ 				return obj;
/******/ 			}
/******/ 		}
/******/ 		var ret = {};
/******/ 		ret[webpackQueues] = x => {};
/******/ 		ret[webpackExports] = dep;
/******/ 		return ret;
/******/ 	}));
/******/ 	__nccwpck_require__.a = (module, body, hasAwait) => {
/******/ 		var queue;
/******/ 		hasAwait && ((queue = []).d = -1);
/******/ 		var depQueues = new Set();
/******/ 		var exports = module.exports;
/******/ 		var currentDeps;
/******/ 		var outerResolve;
/******/ 		var reject;
/******/ 		var promise = new Promise((resolve, rej) => {
/******/ 			reject = rej;
/******/ 			outerResolve = resolve;
/******/ 		});
/******/ 		promise[webpackExports] = exports;
/******/ 		promise[webpackQueues] = (fn) => (queue && fn(queue), depQueues.forEach(fn), promise["catch"](x => {}));
/******/ 		module.exports = promise;
/******/ 		body((deps) => {
/******/ 			currentDeps = wrapDeps(deps);
/******/ 			var fn;
/******/ 			var getResult = () => (currentDeps.map((d) => {
/******/ 				if(d[webpackError]) throw d[webpackError];
/******/ 				return d[webpackExports];
/******/ 			}))
/******/ 			var promise = new Promise((resolve) => {
/******/ 				fn = () => (resolve(getResult));
/******/ 				fn.r = 0;
/******/ 				var fnQueue = (q) => (q !== queue && !depQueues.has(q) && (depQueues.add(q), q && !q.d && (fn.r++, q.push(fn))));
/******/ 				currentDeps.map((dep) => (dep[webpackQueues](fnQueue)));
/******/ 			});
/******/ 			return fn.r ? promise : getResult();
/******/ 		}, (err) => ((err ? reject(promise[webpackError] = err) : outerResolve(exports)), resolveQueue(queue)));
/******/ 		queue && queue.d < 0 && (queue.d = 0);
/******/ 	};
/******/ })();
/******/ 
/******/ /* webpack/runtime/define property getters */
/******/ (() => {
/******/ 	// define getter functions for harmony exports
/******/ 	__nccwpck_require__.d = (exports, definition) => {
/******/ 		for(var key in definition) {
/******/ 			if(__nccwpck_require__.o(definition, key) && !__nccwpck_require__.o(exports, key)) {
/******/ 				Object.defineProperty(exports, key, { enumerable: true, get: definition[key] });
/******/ 			}
/******/ 		}
/******/ 	};
/******/ })();
/******/ 
/******/ /* webpack/runtime/hasOwnProperty shorthand */
/******/ (() => {
/******/ 	__nccwpck_require__.o = (obj, prop) => (Object.prototype.hasOwnProperty.call(obj, prop))
/******/ })();
/******/ 
/************************************************************************/
/******/ 
/******/ // startup
/******/ // Load entry module and return exports
/******/ // This entry module used 'module' so it can't be inlined
/******/ var __webpack_exports__ = __nccwpck_require__(708);
/******/ __webpack_exports__ = await __webpack_exports__;
/******/ 
