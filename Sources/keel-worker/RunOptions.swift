import KeelVM

/// `keel-worker run` options, parsed by hand: the worker links no argument-parsing or Foundation
/// libraries, which keeps its resident memory small (it runs once per VM).
enum RunOptions {
    static let help = """
    USAGE: keel-worker run --kernel PATH [--initrd PATH] [--cmdline STR] [--memory MIB] [--cpus N]

    Boots a Linux kernel (bzImage) with the serial console on stdin/stdout.

    OPTIONS:
      --kernel PATH    kernel image (bzImage)
      --initrd PATH    initial ramdisk
      --cmdline STR    kernel command line (default: console=ttyS0)
      --memory MIB     guest memory in MiB (default: 512)
      --cpus N         virtual processors (default: 1)
      -h, --help       this help

    Exit status: 0 guest powered off, 1 host error, 2 invalid input, 3 guest reset (reboot),
    4 guest crashed (triple fault, KVM internal error, kernel panic), 130/143 stopped by
    SIGINT/SIGTERM. On an interactive terminal, Ctrl-A x stops the VM.

    """

    /// The configuration the arguments describe, or nil when help was asked for.
    static func parse(_ arguments: [String]) throws(ConfigurationError) -> VMConfiguration? {
        var kernel: String?
        var configuration = VMConfiguration(kernelPath: "")
        var rest = arguments[...]
        while let option = rest.popFirst() {
            if option == "-h" || option == "--help" { return nil }
            guard let value = rest.popFirst() else {
                throw ConfigurationError(option.hasPrefix("--") ? "\(option) needs a value" : "unexpected argument '\(option)'")
            }
            switch option {
            case "--kernel": kernel = value
            case "--initrd": configuration.initrdPath = value
            case "--cmdline": configuration.commandLine = value
            case "--memory": configuration.memoryMiB = try integer(value, option)
            case "--cpus": configuration.cpus = try integer(value, option)
            default: throw ConfigurationError("unknown option '\(option)' (see --help)")
            }
        }
        guard let kernel else { throw ConfigurationError("--kernel is required") }
        configuration.kernelPath = kernel
        return configuration
    }

    static func integer(_ text: String, _ option: String) throws(ConfigurationError) -> Int {
        guard let value = Int(text) else { throw ConfigurationError("\(option) \(text): not a number") }
        return value
    }
}
