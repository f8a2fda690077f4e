import KeelManagement
import KeelSystem

/// keeld's side of a worker's control socket (see `WorkerProtocol`).
enum WorkerLink {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func socketPath(_ runDirectory: String) -> String { runDirectory + "/" + WorkerProtocol.controlSocket }

    /// Sends one command and returns the reply. Fails when the worker does not answer within
    /// `timeoutMilliseconds`.
    static func request(_ runDirectory: String, _ command: String, timeoutMilliseconds: Int = 2000) throws(Failure) -> WorkerProtocol.Reply {
        let connection: OwnedDescriptor
        do { connection = try UnixSocket.connect(path: socketPath(runDirectory)) } catch {
            throw Failure(description: "cannot reach the worker: \(error)")
        }
        let (reply, _) = try exchange(connection, command, timeoutMilliseconds: timeoutMilliseconds)
        return reply
    }

    /// Sends `command` on `connection` and reads the reply; also returns bytes that followed it
    /// (console output after `console`).
    static func exchange(_ connection: OwnedDescriptor, _ command: String,
                         timeoutMilliseconds: Int) throws(Failure) -> (WorkerProtocol.Reply, [UInt8]) {
        connection.setReceiveTimeout(milliseconds: timeoutMilliseconds)
        do { try connection.sendAll(Array((command + "\n").utf8)) } catch {
            throw Failure(description: "cannot talk to the worker: \(error)")
        }
        var bytes: [UInt8] = []
        while true {
            if let end = replyEnd(bytes), let reply = WorkerProtocol.parseReply(Array(bytes[..<end])) {
                connection.setReceiveTimeout(milliseconds: 0)
                return (reply, Array(bytes[end...]))
            }
            guard bytes.count < 65_536, let chunk = try? connection.read(maxCount: 4096), !chunk.isEmpty else {
                throw Failure(description: "the worker did not answer '\(command)'")
            }
            bytes += chunk
        }
    }

    private static func replyEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 2 else { return nil }
        for i in 1..<bytes.count where bytes[i] == 0x0A && bytes[i - 1] == 0x0A { return i + 1 }
        return nil
    }
}
