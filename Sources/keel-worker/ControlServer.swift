import KeelSystem
import KeelVM
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The serial console of a managed worker (`--run-dir`): output is kept in a ring of the last
/// `capacity` bytes and copied to every attached console client. A client that cannot keep up
/// loses bytes, never stalls the vCPU that writes them.
final class ConsoleHub: Sendable {
    static let capacity = 64 * 1024

    private struct State: ~Copyable {
        var ring = [UInt8](repeating: 0, count: ConsoleHub.capacity)
        var start = 0
        var count = 0
        var clients: [OwnedDescriptor] = []
    }

    private let state = Mutex(State())

    /// Called for each byte the guest writes to COM1.
    func write(_ byte: UInt8) {
        state.withLock { s in
            if s.count < Self.capacity {
                s.ring[(s.start + s.count) % Self.capacity] = byte
                s.count += 1
            } else {
                s.ring[s.start] = byte
                s.start = (s.start + 1) % Self.capacity
            }
            if !s.clients.isEmpty {
                s.clients.removeAll { $0.sendWithoutBlocking([byte]) == nil }
            }
        }
    }

    /// Sends the kept output to `client`, then adds it to the live clients (under one lock, so
    /// no byte is lost or repeated in between).
    func attach(_ client: OwnedDescriptor) {
        state.withLock { s in
            var history: [UInt8] = []
            history.reserveCapacity(s.count)
            for i in 0..<s.count { history.append(s.ring[(s.start + i) % Self.capacity]) }
            if (try? client.sendAll(history)) != nil { s.clients.append(client) }
        }
    }

    func detach(_ client: OwnedDescriptor) {
        state.withLock { s in s.clients.removeAll { $0 === client } }
    }
}

/// The worker's control socket for keeld (`--run-dir DIR` serves `DIR/control.sock`, owner
/// only). A line protocol (see KeelManagement's WorkerProtocol): status, pause, resume,
/// shutdown, console. Each connection has its own thread; stop and kill are signals.
enum ControlServer {
    static let socketName = "control.sock"

    final class Paused: Sendable {
        let value = Atomic<Bool>(false)
    }

    static func start(runDirectory: String, partition: Partition, console: ConsoleHub) throws(SystemError) {
        let listener = try UnixSocket.listen(path: runDirectory + "/" + socketName, mode: 0o600)
        let paused = Paused()
        _ = try NamedThread(name: "keel-control") {
            while true {
                guard let connection = try? UnixSocket.accept(listener) else { usleep(10_000); continue }
                do {
                    _ = try NamedThread(name: "keel-control-c") {
                        serve(connection, partition: partition, console: console, paused: paused)
                    }
                } catch {
                    _ = try? connection.sendAll(Array("error cannot start a thread\n\n".utf8))
                }
            }
        }
    }

    static func serve(_ connection: OwnedDescriptor, partition: Partition, console: ConsoleHub, paused: Paused) {
        var line: [UInt8] = []
        while !line.contains(0x0A) {
            guard line.count < 256, let chunk = try? connection.read(maxCount: 256 - line.count), !chunk.isEmpty else { return }
            line += chunk
        }
        let newline = line.firstIndex(of: 0x0A) ?? line.endIndex
        let command = String(decoding: line[..<newline], as: UTF8.self)
        var leftover = Array(line[line.index(after: newline)...])
        func reply(_ first: String, _ fields: [(String, String)] = []) {
            var text = first + "\n"
            for (key, value) in fields {
                text += key + "=" + value.replacing("\n", with: " ").replacing("\r", with: " ") + "\n"
            }
            _ = try? connection.sendAll(Array((text + "\n").utf8))
        }
        switch command {
        case "status":
            let s = partition.guestIntegrationState
            var fields: [(String, String)] = [
                ("state", paused.value.load(ordering: .acquiring) ? "paused" : "running"),
                ("pid", "\(getpid())"),
                ("cpus", "\(partition.configuration.cpus)"),
                ("paused_vcpus", "\(partition.pausedProcessors)"),
            ]
            switch s.heartbeat {
            case .unknown: fields.append(("heartbeat", "unknown"))
            case .healthy(let sequence): fields += [("heartbeat", "healthy"), ("heartbeat_sequence", "\(sequence)")]
            case .notResponding: fields.append(("heartbeat", "not-responding"))
            }
            if let os = s.guestOS { fields.append(("guest_os", os)) }
            fields.append(("services", s.versions.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",")))
            reply("ok", fields)
        case "pause":
            partition.pause()
            paused.value.store(true, ordering: .releasing)
            // Report success once every vCPU has left guest code (bounded wait).
            for _ in 0..<200 where partition.pausedProcessors < partition.configuration.cpus { usleep(5_000) }
            reply("ok", [("paused_vcpus", "\(partition.pausedProcessors)")])
        case "resume":
            paused.value.store(false, ordering: .releasing)
            partition.resume()
            reply("ok")
        case "shutdown":
            if partition.requestGuestShutdown() { reply("ok") } else { reply("error the guest has no shutdown service") }
        case "console":
            reply("ok")
            console.attach(connection)
            defer { console.detach(connection) }
            while true {
                if leftover.isEmpty {
                    guard let chunk = try? connection.read(maxCount: 1024), !chunk.isEmpty else { return }
                    leftover = chunk
                }
                let taken = partition.sendConsoleInput(leftover)
                leftover.removeFirst(taken)
                if !leftover.isEmpty { usleep(1000) }
            }
        default:
            reply("error unknown command '\(command.prefix(40))'")
        }
    }
}
