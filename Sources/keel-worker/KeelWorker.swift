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
enum KeelWorker {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard arguments.first == "run" else {
            Terminal.writeError("usage: keel-worker run --kernel PATH ... (see keel-worker run --help)\n")
            exit(ExitStatus.invalidInput.rawValue)
        }
        let options: RunOptions.Parsed
        do {
            guard let parsed = try RunOptions.parse(Array(arguments.dropFirst())) else {
                print(RunOptions.help, terminator: "")
                exit(0)
            }
            options = parsed
        } catch {
            Terminal.writeError("keel: error: \(error)\n")
            exit(ExitStatus.invalidInput.rawValue)
        }
        exit(run(options.configuration, shutdownTimeoutSeconds: options.shutdownTimeoutSeconds))
    }

    /// Runs the VM to its end and returns the process exit status.
    static func run(_ configuration: VMConfiguration, shutdownTimeoutSeconds: Int) -> Int32 {
        let log: @Sendable (String) -> Void = { Terminal.writeError("keel: \($0)\r\n") }
        let partition: Partition
        do {
            partition = try Partition(configuration: configuration, consoleOutput: Terminal.writeOutput, log: log)
        } catch let error as ConfigurationError {
            Terminal.writeError("keel: error: \(error)\n")
            return ExitStatus.invalidInput.rawValue
        } catch {
            Terminal.writeError("keel: error: cannot create the VM: \(error)\n")
            return ExitStatus.hostError.rawValue
        }

        let stopSignal: StopSignals
        do { stopSignal = try StopSignals(partition: partition, shutdownTimeoutSeconds: shutdownTimeoutSeconds, log: log) } catch {
            Terminal.writeError("keel: error: cannot start the signal thread: \(error)\n")
            return ExitStatus.hostError.rawValue
        }
        Terminal.enterRawMode()
        defer { Terminal.restoreMode() }
        do { try partition.start() } catch {
            Terminal.restoreMode()
            Terminal.writeError("keel: error: cannot start the VM: \(error)\n")
            return ExitStatus.hostError.rawValue
        }
        do {
            try ConsoleInput.start(partition: partition, escapeEnabled: Terminal.inputIsTerminal)
            if Host.environment("KEEL_DEBUG_EXITS") == "1" { try startExitStatistics(partition, log: log) }
        } catch {
            partition.requestStop(.hostError("\(error)"))
        }
        let reason = partition.waitUntilStopped()
        Terminal.restoreMode()

        switch reason {
        case .powerOff:
            return ExitStatus.guestPoweredOff.rawValue
        case .reset:
            log("guest reset; exiting (status \(ExitStatus.guestReset.rawValue))")
            return ExitStatus.guestReset.rawValue
        case .guestCrash, .guestPanic:
            log("\(reason) (status \(ExitStatus.guestCrashed.rawValue))")
            return ExitStatus.guestCrashed.rawValue
        case .stopRequested:
            let signal = stopSignal.received ?? 0
            return signal > 0 ? 128 + signal : 0
        case .hostError:
            log("\(reason)")
            return ExitStatus.hostError.rawValue
        }
    }

    /// `KEEL_DEBUG_EXITS=1`: every 5 s, sample each vCPU's RIP and log its exit counters.
    static func startExitStatistics(_ partition: Partition, log: @escaping @Sendable (String) -> Void) throws {
        _ = try NamedThread(name: "keel-exitstats") {
            while true {
                sleep(5)
                partition.sampleProcessors()
                usleep(200_000)
                for line in partition.exitSummary { log(line) }
            }
        }
    }
}
