import Foundation
import KeelManagement
import KeelSystem
import Testing

/// State files: written atomically (write, fsync, rename), read back exactly, and a corrupt or
/// half-written file is reported with its path and what is wrong.
struct PersistenceTests {
    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "keel-persist-\(UUID().uuidString)"
        try Host.makeDirectories(directory)
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: directory) }

    static let spec = VMSpec(name: "a", memoryMiB: 256, cpus: 2, kernel: "/k/vmlinuz", initrd: "/k/initrd",
                             disks: [DiskSpec(path: "/d/x.img", readOnly: true)])

    @Test func configAndStateRoundTrip() throws {
        defer { cleanup() }
        let config = StoredConfig(id: "0123456789ab", createdAt: Timestamp.string(), spec: Self.spec)
        var state = StoredState(state: .running)
        state.workerPID = 1234
        state.stopRequest = .graceful
        state.lastExit = ExitInfo(status: 143, reason: "turned off", time: Timestamp.string())
        let path = directory + "/vm.json"
        try Host.writeFileAtomically(path, Persistence.encode(config))
        #expect(try Persistence.decode(StoredConfig.self, from: Host.readFile(path), path: path) == config)
        try Host.writeFileAtomically(path, Persistence.encode(state))
        #expect(try Persistence.decode(StoredState.self, from: Host.readFile(path), path: path) == state)
    }

    @Test func atomicWriteReplacesWholeAndLeavesNoTemporaryFiles() throws {
        defer { cleanup() }
        let path = directory + "/state.json"
        try Host.writeFileAtomically(path, Array(repeating: 0x41, count: 100_000))
        try Host.writeFileAtomically(path, Array("short".utf8))
        #expect(try Host.readFile(path) == Array("short".utf8))
        #expect(Host.directoryEntries(directory) == ["state.json"])
        // Owner-only permissions.
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
    }

    @Test func failedAtomicWriteLeavesTheOldFile() throws {
        defer { cleanup() }
        let path = directory + "/vm.json"
        try Host.writeFileAtomically(path, Array("old".utf8))
        #expect(throws: SystemError.self) { try Host.writeFileAtomically(directory + "/missing/vm.json", Array("x".utf8)) }
        // A directory where the file should go: rename fails, the temporary file is removed.
        try Host.makeDirectories(directory + "/blocked.json/inner")
        #expect(throws: SystemError.self) { try Host.writeFileAtomically(directory + "/blocked.json", Array("x".utf8)) }
        #expect(try Host.readFile(path) == Array("old".utf8))
        #expect(Host.directoryEntries(directory)?.sorted() == ["blocked.json", "vm.json"])
    }

    @Test(arguments: [
        ("", "empty file"),
        ("{\"formatVersion\": 1, \"id\": \"x\", \"createdAt\": \"t\", \"spec\": {\"name\": \"a\", \"ker", "not a valid StoredConfig"),
        ("{\"formatVersion\": 1, \"id\": \"x\"}", "missing 'createdAt'"),
        ("{\"formatVersion\": 99, \"id\": \"x\"}", "format version 99"),
        ("\u{0}\u{0}\u{0}\u{0}", "not a valid StoredConfig"),
        ("[1, 2]", "not a valid StoredConfig"),
    ])
    func corruptFilesAreReported(_ content: String, _ fragment: String) {
        do {
            _ = try Persistence.decode(StoredConfig.self, from: Array(content.utf8), path: "/state/vms/a/vm.json")
            Issue.record("decoded corrupt content")
        } catch {
            #expect(error.path == "/state/vms/a/vm.json")
            #expect(error.description.contains(fragment), "\(error)")
        }
    }

    @Test func eventLogKeepsUnreadableLinesAsErrors() {
        let good = VMEvent(time: "t1", kind: .state, message: "running", state: .running)
        var bytes = Persistence.eventLine(good)
        bytes += Array("{\"time\":\"t2\",\"kind\":\"sta".utf8)   // torn last write
        let events = Persistence.parseEvents(bytes)
        #expect(events.count == 2)
        #expect(events[0] == good)
        #expect(events[1].kind == .error && events[1].message.contains("unreadable event log line"))
    }

    @Test func stateDirectoryLengthLeavesRoomForWorkerSockets() {
        let limit = StateFiles.maximumStateDirectoryLength()
        let socket = String(repeating: "s", count: limit) + "/run/" + StateFiles.newID() + "/control.sock"
        #expect(socket.utf8.count == 107)
        #expect(StateFiles.newID().count == 12)
    }

    @Test func workerReplyAndExitRecord() {
        let reply = WorkerProtocol.parseReply(Array("ok\nstate=paused\nguest_os=Linux 6.12 (x=1)\n\n".utf8))
        #expect(reply == WorkerProtocol.Reply(ok: true, message: "", fields: ["state": "paused", "guest_os": "Linux 6.12 (x=1)"]))
        #expect(WorkerProtocol.parseReply(Array("ok\nstate=paused\n".utf8)) == nil)
        #expect(WorkerProtocol.parseReply(Array("error no shutdown service\n\n".utf8))?.message == "no shutdown service")
        #expect(WorkerProtocol.parseExitRecord(Array("status=143\nreason=stopped by signal 15\n".utf8))! == (143, "stopped by signal 15"))
        #expect(WorkerProtocol.parseExitRecord(Array("stat".utf8)) == nil)
    }

    @Test func defaultLocations() {
        #expect(ManagementDefaults.stateDirectory(environment: [:], isRoot: true) == "/var/lib/keel")
        #expect(ManagementDefaults.stateDirectory(environment: ["HOME": "/home/u"], isRoot: false) == "/home/u/.local/state/keel")
        #expect(ManagementDefaults.stateDirectory(environment: ["HOME": "/home/u", "XDG_STATE_HOME": "/x"], isRoot: false) == "/x/keel")
        #expect(ManagementDefaults.socketPath(environment: ["KEEL_SOCKET": "/tmp/k.sock"]) == "/tmp/k.sock")
    }
}
