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
        var reason = ""
        let status = run(options.configuration, shutdownTimeoutSeconds: options.shutdownTimeoutSeconds,
                         runDirectory: options.runDirectory, reason: &reason)
        if let directory = options.runDirectory {
            // keeld reads this when it was not our parent (restarted while we ran).
            Host.removeFile(directory + "/" + ControlServer.socketName)
            let record = "status=\(status)\nreason=\(reason.replacing("\n", with: " "))\n"
            do { try Host.writeFileAtomically(directory + "/exit", Array(record.utf8)) } catch {
                Terminal.writeError("keel: error: cannot write the exit record: \(error)\n")
            }
        }
        exit(status)
    }

    /// Runs the VM to its end and returns the process exit status; `reason` says why in words.
    /// With a run directory (managed by keeld) the console goes to the control socket's clients.
    static func run(_ configuration: VMConfiguration, shutdownTimeoutSeconds: Int, runDirectory: String? = nil,
                    reason: inout String) -> Int32 {
        let log: @Sendable (String) -> Void = { Terminal.writeError("keel: \($0)\r\n") }
        let console = runDirectory.map { _ in ConsoleHub() }
        let partition: Partition
        do {
            let output: @Sendable (UInt8) -> Void
            if let console { output = { console.write($0) } } else { output = Terminal.writeOutput }
            partition = try Partition(configuration: configuration, consoleOutput: output, log: log)
        } catch let error as ConfigurationError {
            Terminal.writeError("keel: error: \(error)\n")
            reason = "\(error)"
            return ExitStatus.invalidInput.rawValue
        } catch {
            Terminal.writeError("keel: error: cannot create the VM: \(error)\n")
            reason = "cannot create the VM: \(error)"
            return ExitStatus.hostError.rawValue
        }

        let stopSignal: StopSignals
        do { stopSignal = try StopSignals(partition: partition, shutdownTimeoutSeconds: shutdownTimeoutSeconds, log: log) } catch {
            Terminal.writeError("keel: error: cannot start the signal thread: \(error)\n")
            reason = "cannot start the signal thread: \(error)"
            return ExitStatus.hostError.rawValue
        }
        Terminal.enterRawMode()
        defer { Terminal.restoreMode() }
        do { try partition.start() } catch {
            Terminal.restoreMode()
            Terminal.writeError("keel: error: cannot start the VM: \(error)\n")
            reason = "cannot start the VM: \(error)"
            return ExitStatus.hostError.rawValue
        }
        do {
            if let runDirectory, let console {
                // Serving the control socket is the "VM is running" signal keeld waits for.
                try ControlServer.start(runDirectory: runDirectory, partition: partition, console: console)
            } else {
                try ConsoleInput.start(partition: partition, escapeEnabled: Terminal.inputIsTerminal)
            }
            if Host.environment("KEEL_DEBUG_EXITS") == "1" { try startExitStatistics(partition, log: log) }
        } catch {
            partition.requestStop(.hostError("\(error)"))
        }
        let stopReason = partition.waitUntilStopped()
        Terminal.restoreMode()
        reason = "\(stopReason)"

        switch stopReason {
        case .powerOff:
            reason = "guest powered off"
            return ExitStatus.guestPoweredOff.rawValue
        case .reset:
            log("guest reset; exiting (status \(ExitStatus.guestReset.rawValue))")
            return ExitStatus.guestReset.rawValue
        case .guestCrash, .guestPanic:
            log("\(stopReason) (status \(ExitStatus.guestCrashed.rawValue))")
            return ExitStatus.guestCrashed.rawValue
        case .stopRequested:
            let signal = stopSignal.received ?? 0
            if signal > 0 { reason = "stopped by signal \(signal)" }
            return signal > 0 ? 128 + signal : 0
        case .hostError:
            log("\(stopReason)")
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
