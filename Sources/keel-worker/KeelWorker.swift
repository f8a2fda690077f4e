import ArgumentParser
import Dispatch
import Foundation
import KeelSystem
import KeelVM
#if canImport(Glibc)
import Glibc
#endif

/// Exit statuses of `keel run` / `keel-worker run` (documented in the README).
enum ExitStatus: Int32 {
    case guestPoweredOff = 0
    case hostError = 1
    case invalidInput = 2
    case guestReset = 3
    case guestCrashed = 4
}

@main
struct KeelWorker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keel-worker",
        abstract: "Runs one Keel VM in this process (started by `keel run` or by keeld).",
        subcommands: [Run.self])
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Boot a Linux kernel with the serial console on stdin/stdout.",
        discussion: "Exit status: 0 guest powered off, 1 host error, 2 invalid input, 3 guest reset (reboot), "
            + "4 guest crashed (triple fault, KVM internal error, kernel panic), 64 unparsable options, "
            + "130/143 stopped by SIGINT/SIGTERM. On an interactive terminal, Ctrl-A x stops the VM.")

    @Option(help: "Path of the kernel (bzImage).") var kernel: String
    @Option(help: "Path of the initial ramdisk.") var initrd: String?
    @Option(help: "Kernel command line.") var cmdline: String = "console=ttyS0"
    @Option(help: "Guest memory in MiB.") var memory: Int = 512
    @Option(help: "Number of virtual processors.") var cpus: Int = 1

    func run() throws {
        let configuration = VMConfiguration(kernelPath: kernel, initrdPath: initrd, commandLine: cmdline,
                                            memoryMiB: memory, cpus: cpus)
        let log: @Sendable (String) -> Void = { Terminal.writeError("keel: \($0)\r\n") }
        let partition: Partition
        do {
            partition = try Partition(configuration: configuration, consoleOutput: Terminal.writeOutput, log: log)
        } catch let error as ConfigurationError {
            Terminal.writeError("keel: error: \(error)\n")
            throw ExitCode(ExitStatus.invalidInput.rawValue)
        } catch {
            Terminal.writeError("keel: error: cannot create the VM: \(error)\n")
            throw ExitCode(ExitStatus.hostError.rawValue)
        }

        let stopSignal = StopSignals(partition: partition)
        Terminal.enterRawMode()
        defer { Terminal.restoreMode() }
        do { try partition.start() } catch {
            Terminal.restoreMode()
            Terminal.writeError("keel: error: cannot start the VM: \(error)\n")
            throw ExitCode(ExitStatus.hostError.rawValue)
        }
        try ConsoleInput.start(partition: partition, escapeEnabled: Terminal.inputIsTerminal)
        if ProcessInfo.processInfo.environment["KEEL_DEBUG_EXITS"] == "1" {
            _ = try NamedThread(name: "keel-exitstats") {
                while true {
                    sleep(5)
                    partition.sampleProcessors()
                    usleep(200_000)
                    for line in partition.exitSummary { log(line) }
                }
            }
        }
        let reason = partition.waitUntilStopped()
        Terminal.restoreMode()

        switch reason {
        case .powerOff:
            throw ExitCode(ExitStatus.guestPoweredOff.rawValue)
        case .reset:
            log("guest reset; exiting (status \(ExitStatus.guestReset.rawValue))")
            throw ExitCode(ExitStatus.guestReset.rawValue)
        case .guestCrash, .guestPanic:
            log("\(reason) (status \(ExitStatus.guestCrashed.rawValue))")
            throw ExitCode(ExitStatus.guestCrashed.rawValue)
        case .stopRequested:
            let signal = stopSignal.received ?? 0
            throw ExitCode(signal > 0 ? 128 + signal : 0)
        case .hostError:
            log("\(reason)")
            throw ExitCode(ExitStatus.hostError.rawValue)
        }
    }
}
