import Foundation
import KeelManagement
import KeelSystem

/// keeld: Keel's management service (Hyper-V's VMMS). Owns the VM inventory in a state
/// directory, serves the REST API on a Unix socket, and runs one detached `keel-worker` per
/// running VM, which it watches; workers outlive keeld, which finds them again at startup.
enum Keeld {
    static let usage = """
    USAGE: keeld [--state-dir DIR] [--socket PATH] [--socket-mode OCTAL] [--worker PATH]

    Keel's management service: the VM inventory, the REST API on a Unix socket (see
    docs/openapi.yaml) and one keel-worker process per running VM.

    OPTIONS:
      --state-dir DIR      VM configurations, state and event logs (default: /var/lib/keel
                           for root, else $XDG_STATE_HOME/keel or ~/.local/state/keel)
      --socket PATH        the API socket (default: DIR/keeld.sock)
      --socket-mode OCTAL  permissions of the API socket (default: 600, owner only)
      --worker PATH        the keel-worker binary (default: next to keeld)
      -h, --help           this help

    Exit status: 0 after SIGTERM/SIGINT, 1 host error, 2 invalid option.
    Stopping keeld leaves running VMs running; a restarted keeld reattaches to them.

    """

    static func fail(_ message: String, status: Int32) -> Never {
        FileHandle.standardError.write(Data("keeld: error: \(message)\n".utf8))
        exit(status)
    }

    static func main() {
        var stateDirectory = ManagementDefaults.stateDirectory()
        var socket: String?
        var socketMode: mode_t = 0o600
        var worker: String?
        var arguments = CommandLine.arguments.dropFirst()
        while let option = arguments.popFirst() {
            if option == "-h" || option == "--help" { print(usage, terminator: ""); exit(0) }
            guard let value = arguments.popFirst() else { fail("\(option) needs a value (see --help)", status: 2) }
            switch option {
            case "--state-dir": stateDirectory = value
            case "--socket": socket = value
            case "--socket-mode":
                guard let mode = mode_t(value, radix: 8), mode <= 0o777 else { fail("--socket-mode \(value): not an octal mode", status: 2) }
                socketMode = mode
            case "--worker": worker = value
            default: fail("unknown option '\(option)' (see --help)", status: 2)
            }
        }
        let cwd = FileManager.default.currentDirectoryPath
        if !stateDirectory.hasPrefix("/") { stateDirectory = cwd + "/" + stateDirectory }
        while stateDirectory.count > 1 && stateDirectory.hasSuffix("/") { stateDirectory.removeLast() }
        let socketPath = socket.map { $0.hasPrefix("/") ? $0 : cwd + "/" + $0 } ?? stateDirectory + "/" + StateFiles.socketFile
        let own = ProcessImage.currentExecutable
        let workerPath = worker ?? (String(own[..<(own.lastIndex(of: "/") ?? own.startIndex)]) + "/keel-worker")

        let limit = StateFiles.maximumStateDirectoryLength(socketPathLimit: UnixSocket.maximumPathLength)
        guard stateDirectory.utf8.count <= limit else {
            fail("--state-dir \(stateDirectory): longer than \(limit) bytes (worker sockets live under it)", status: 2)
        }
        guard socketPath.utf8.count <= UnixSocket.maximumPathLength else {
            fail("--socket \(socketPath): longer than \(UnixSocket.maximumPathLength) bytes", status: 2)
        }
        guard Host.isReadable(workerPath) else { fail("worker binary \(workerPath) not found (use --worker)", status: 2) }

        signal(SIGPIPE, SIG_IGN)
        let stopSignals = SignalSet([SIGTERM, SIGINT])
        stopSignals.blockInCurrentThread()

        let lock: OwnedDescriptor
        do {
            try Host.makeDirectories(stateDirectory, mode: 0o700)
            guard let held = try Host.tryLock(stateDirectory + "/" + StateFiles.lockFile) else {
                fail("another keeld uses \(stateDirectory)", status: 1)
            }
            lock = held
        } catch {
            fail("cannot use the state directory: \(error)", status: 1)
        }
        let log: @Sendable (String) -> Void = { line in
            FileHandle.standardError.write(Data("keeld: \(line)\n".utf8))
        }
        let inventory = Inventory(stateDirectory: stateDirectory, workerPath: workerPath, log: log)
        let listener: OwnedDescriptor
        do {
            try inventory.load()
            listener = try UnixSocket.listen(path: socketPath, mode: socketMode)
            try inventory.startMonitor()
            _ = try NamedThread(name: "keeld-signals") {
                let signo = stopSignals.wait()
                log("signal \(signo): stopping (running VMs keep running)")
                Host.removeFile(socketPath)
                withExtendedLifetime(lock) { exit(0) }
            }
        } catch {
            fail("\(error)", status: 1)
        }
        log("listening on \(socketPath) (state in \(stateDirectory), \(inventory.count) VMs)")
        APIServer(inventory: inventory, listener: listener, stateDirectory: stateDirectory).run()
    }
}

Keeld.main()
