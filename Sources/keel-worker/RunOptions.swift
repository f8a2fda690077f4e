import KeelPlatform
import KeelSystem
import KeelVM

/// `keel-worker run` options, parsed by hand: the worker links no argument-parsing or Foundation
/// libraries, which keeps its resident memory small (it runs once per VM).
enum RunOptions {
    static let help = """
    USAGE: keel-worker run --kernel PATH [--initrd PATH] [--cmdline STR] [--memory MIB] [--cpus N]
                           [--disk PATH[,readonly]]... [--net tap=NAME[,mac=MAC]]...
                           [--shutdown-timeout SECONDS]
                           [--rtc-offset SECONDS] [--cpu-features -NAME[,-NAME]...]
                           [--run-dir DIR]

    Boots a Linux kernel (bzImage) with the serial console on stdin/stdout.

    OPTIONS:
      --kernel PATH    kernel image (bzImage)
      --initrd PATH    initial ramdisk
      --cmdline STR    kernel command line (default: console=ttyS0)
      --memory MIB     guest memory in MiB (default: 512)
      --cpus N         virtual processors (default: 1)
      --disk PATH[,readonly][,controller=N]
                       raw disk image on synthetic SCSI controller N (0-3, default 0;
                       repeatable: LUN 0, 1, ... in order per controller); locked against
                       other VMs while the VM runs
      --net tap=NAME[,mac=XX:XX:XX:XX:XX:XX]
                       synthetic network adapter bridged to host TAP NAME (created if
                       missing, which needs CAP_NET_ADMIN); repeatable; default MAC is
                       stable, 00:15:5d:..., derived from NAME
      --shutdown-timeout SECONDS
                       on SIGTERM, how long the guest may take to shut down after Keel
                       asks it to (through the Hyper-V shutdown service) before Keel
                       powers it off (default: 30; 0 = power off at once)
      --rtc-offset SECONDS
                       start the guest's real-time clock this far from the host's time
                       (negative = behind; default: 0)
      --cpu-features -NAME[,-NAME]...
                       host CPU features the guest does not see, by /proc/cpuinfo name
                       (as QEMU's -cpu host,-NAME): \(CPUFeature.known.map(\.name).joined(separator: ", "))
      --run-dir DIR    managed mode (keeld): serve the control socket DIR/control.sock
                       (owner only; status, pause, resume, shutdown, console attach), keep
                       the serial console there instead of on stdin/stdout, and write the
                       exit status and reason to DIR/exit when the VM ends
      -h, --help       this help

    Exit status: 0 guest powered off, 1 host error, 2 invalid input, 3 guest reset (reboot),
    4 guest crashed (triple fault, KVM internal error, kernel panic), 130/143 stopped by
    SIGINT/SIGTERM. SIGINT stops the VM at once. SIGTERM first asks the guest to shut down
    (status 0 if it powers off in time, 143 if Keel had to force it); a second SIGTERM
    forces it. On an interactive terminal, Ctrl-A x stops the VM.

    """

    /// What the worker runs: the VM and how to stop it.
    struct Parsed {
        var configuration: VMConfiguration
        var shutdownTimeoutSeconds = 30
        var runDirectory: String?
    }

    static let maximumShutdownTimeoutSeconds = 86_400

    /// The configuration the arguments describe, or nil when help was asked for.
    static func parse(_ arguments: [String]) throws(ConfigurationError) -> Parsed? {
        var kernel: String?
        var configuration = VMConfiguration(kernelPath: "")
        var shutdownTimeout = 30
        var runDirectory: String?
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
            case "--disk": configuration.disks.append(try DiskConfiguration.parse(value))
            case "--net": configuration.networks.append(try NetworkConfiguration.parse(value))
            case "--run-dir":
                guard value.hasPrefix("/"), Host.fileKind(value) == .directory else {
                    throw ConfigurationError("--run-dir \(value): not an existing directory given by absolute path")
                }
                guard value.utf8.count + 1 + ControlServer.socketName.utf8.count <= UnixSocket.maximumPathLength else {
                    throw ConfigurationError("--run-dir \(value): too long for a Unix socket path")
                }
                runDirectory = value
            case "--cpu-features":
                do {
                    configuration.hiddenCPUFeatures = try CPUFeature.parseHidden(value)
                } catch {
                    throw ConfigurationError("--cpu-features \(value): \(error)")
                }
            case "--rtc-offset": configuration.rtcOffsetSeconds = Int64(try integer(value, option))
            case "--shutdown-timeout":
                shutdownTimeout = try integer(value, option)
                guard (0...maximumShutdownTimeoutSeconds).contains(shutdownTimeout) else {
                    throw ConfigurationError("--shutdown-timeout \(value): must be between 0 and \(maximumShutdownTimeoutSeconds) seconds")
                }
            default: throw ConfigurationError("unknown option '\(option)' (see --help)")
            }
        }
        guard let kernel else { throw ConfigurationError("--kernel is required") }
        configuration.kernelPath = kernel
        return Parsed(configuration: configuration, shutdownTimeoutSeconds: shutdownTimeout, runDirectory: runDirectory)
    }

    static func integer(_ text: String, _ option: String) throws(ConfigurationError) -> Int {
        guard let value = Int(text) else { throw ConfigurationError("\(option) \(text): not a number") }
        return value
    }
}
