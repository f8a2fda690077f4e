import Foundation
import KeelManagement
import KeelSystem
import Synchronization

/// One VM keeld knows: its stored files and what it saw of the worker since.
struct Entry: Sendable {
    var name: String
    var config: StoredConfig?
    var stored: StoredState
    /// Why the VM's files cannot be used (state `corrupt`).
    var corruption: String?
    /// The worker was started by this keeld (so waitpid works); else it was found at startup.
    var isChild = false
    /// An operation that must not overlap another (start, delete) is in progress.
    var busy = false
    var heartbeat: String?
    var guestOS: String?
    var workerStartMilliseconds: Double?

    var state: VMState { corruption == nil ? stored.state : .corrupt }
    var id: String { config?.id ?? "" }

    func info() -> VMInfo {
        var info = VMInfo(id: id, name: name, state: state, spec: config?.spec)
        info.createdAt = config?.createdAt
        info.workerPID = stored.state.hasWorker ? stored.workerPID : nil
        info.startedAt = stored.state.hasWorker ? stored.startedAt : nil
        info.workerStartMilliseconds = workerStartMilliseconds
        info.heartbeat = stored.state.hasWorker ? heartbeat : nil
        info.guestOS = guestOS
        info.lastExit = stored.lastExit
        info.error = corruption ?? stored.lastError
        return info
    }
}

/// The VM inventory: the state directory on disk and the workers. Every change to a VM is
/// written (atomically) before it is reported; operations on one VM that must not overlap are
/// serialized with the entry's `busy` flag, and nothing slow happens under the lock.
final class Inventory: Sendable {
    let stateDirectory: String
    let workerPath: String
    let log: @Sendable (String) -> Void
    private let entries = Mutex<[String: Entry]>([:])
    /// Names reserved by creates in progress.
    private let creating = Mutex<Set<String>>([])

    static let startTimeoutSeconds = 60.0

    init(stateDirectory: String, workerPath: String, log: @escaping @Sendable (String) -> Void) {
        self.stateDirectory = stateDirectory
        self.workerPath = workerPath
        self.log = log
    }

    var vmsDirectory: String { stateDirectory + "/" + StateFiles.vmsDirectory }
    func vmDirectory(_ name: String) -> String { vmsDirectory + "/" + name }
    func runDirectory(_ id: String) -> String { stateDirectory + "/" + StateFiles.runDirectory + "/" + id }

    static let fileFacts = FileFacts(
        kind: { path in
            switch Host.fileKind(path) {
            case .missing: .missing
            case .directory: .directory
            case .other: .file
            }
        },
        readable: { Host.isReadable($0) },
        writable: { Host.isWritable($0) },
        size: { Host.fileSize($0) })

    // MARK: - Loading

    /// Reads every VM in the state directory and reconciles it with the workers still running.
    func load() throws {
        try Host.makeDirectories(vmsDirectory)
        try Host.makeDirectories(stateDirectory + "/" + StateFiles.runDirectory)
        var loaded: [String: Entry] = [:]
        for name in (Host.directoryEntries(vmsDirectory) ?? []).sorted() {
            let directory = vmDirectory(name)
            if name.hasPrefix(StateFiles.creatingPrefix) || name.hasPrefix(StateFiles.deletingPrefix) {
                log("removing \(directory): left by a create or delete that did not finish")
                try? FileManager.default.removeItem(atPath: directory)
                continue
            }
            if name.hasPrefix(".") { continue }
            for leftover in Host.directoryEntries(directory) ?? [] where leftover.contains(".tmp-") {
                log("warning: \(directory)/\(leftover): a half-written file from an interrupted write; removed")
                Host.removeFile(directory + "/" + leftover)
            }
            var entry = Entry(name: name, config: nil, stored: StoredState())
            do {
                entry.config = try readStored(StoredConfig.self, directory + "/" + StateFiles.configFile)
                entry.stored = try readStored(StoredState.self, directory + "/" + StateFiles.stateFile)
                if entry.config?.spec.name != name {
                    throw CorruptFile(path: directory + "/" + StateFiles.configFile,
                                      reason: "names VM '\(entry.config?.spec.name ?? "")', its directory is '\(name)'")
                }
            } catch {
                entry.corruption = "\(error)"
                log("error: VM '\(name)' is corrupt: \(error)")
            }
            if entry.corruption == nil { reconcile(&entry) }
            loaded[name] = entry
        }
        entries.withLock { $0 = loaded }
    }

    private func readStored<T: Decodable>(_ type: T.Type, _ path: String) throws -> T {
        guard Host.fileKind(path) != .missing else { throw CorruptFile(path: path, reason: "missing") }
        guard let bytes = Host.readSmallFile(path) else { throw CorruptFile(path: path, reason: "cannot be read") }
        return try Persistence.decode(type, from: bytes, path: path)
    }

    /// At startup: is the worker the state file names still there? Reattach, or record how it ended.
    private func reconcile(_ entry: inout Entry) {
        guard entry.stored.state.hasWorker else { return }
        let run = runDirectory(entry.id)
        if let pid = entry.stored.workerPID, isOurWorker(pid, runDirectory: run) {
            if let reply = try? WorkerLink.request(run, "status"), reply.ok {
                if entry.stored.state != .stopping {
                    entry.stored.state = reply.fields["state"] == "paused" ? .paused : .running
                }
                entry.heartbeat = reply.fields["heartbeat"]
                entry.guestOS = reply.fields["guest_os"]
                log("VM '\(entry.name)': found its worker (pid \(pid)) running; reattached")
                appendEvent(entry.name, VMEvent(time: Timestamp.string(), kind: .state,
                                                message: "keeld restarted and found the worker (pid \(pid)) running",
                                                state: entry.stored.state))
            } else {
                log("VM '\(entry.name)': worker pid \(pid) is alive but does not answer on its control socket")
                entry.stored.lastError = "worker pid \(pid) does not answer on its control socket"
            }
            persist(entry)
            return
        }
        let exit = exitFromRecord(run)
        finish(&entry, exit: exit)
    }

    /// True when `pid` is alive and is the worker of `runDirectory` (not a recycled PID).
    func isOurWorker(_ pid: Int32, runDirectory: String) -> Bool {
        guard DetachedProcess.isAlive(pid), let arguments = DetachedProcess.commandLine(pid) else { return false }
        return arguments.contains(runDirectory)
    }

    private func exitFromRecord(_ run: String) -> WorkerExit {
        if let bytes = Host.readSmallFile(run + "/" + WorkerProtocol.exitRecord),
           let record = WorkerProtocol.parseExitRecord(bytes) {
            return .exited(record.status)
        }
        return .vanished
    }

    // MARK: - Queries

    func list() -> [VMInfo] {
        entries.withLock { $0.values.map { $0.info() } }.sorted { $0.name < $1.name }
    }

    func get(_ name: String) throws(APIError) -> VMInfo {
        try Validation.checkName(name)
        guard let entry = entries.withLock({ $0[name] }) else { throw notFound(name) }
        return entry.info()
    }

    var count: Int { entries.withLock { $0.count } }

    func events(_ name: String, limit: Int) throws(APIError) -> [VMEvent] {
        _ = try get(name)
        let bytes = Host.readSmallFile(vmDirectory(name) + "/" + StateFiles.eventsFile, limit: 16 << 20) ?? []
        return Array(Persistence.parseEvents(bytes).suffix(limit))
    }

    private func notFound(_ name: String) -> APIError {
        APIError(.notFound, "no VM named '\(name)' (see keel list)")
    }

    // MARK: - Create and delete

    func create(_ spec: VMSpec) throws(APIError) -> VMInfo {
        try Validation.check(spec, files: Self.fileFacts)
        let name = spec.name
        let reserved = creating.withLock { $0.insert(name).inserted }
        guard reserved, entries.withLock({ $0[name] == nil }) else {
            if reserved { creating.withLock { _ = $0.remove(name) } }
            throw APIError(.alreadyExists, "a VM named '\(name)' exists already")
        }
        defer { creating.withLock { _ = $0.remove(name) } }

        let config = StoredConfig(id: StateFiles.newID(), createdAt: Timestamp.string(), spec: spec)
        let stored = StoredState()
        // Everything is written in a scratch directory that is renamed into place when complete,
        // so a failure (or a crash) leaves nothing that looks like a VM.
        let scratch = vmsDirectory + "/" + StateFiles.creatingPrefix + name + "-" + config.id
        do {
            try Host.makeDirectories(scratch)
            try Host.writeFileAtomically(scratch + "/" + StateFiles.configFile, Persistence.encode(config))
            try Host.writeFileAtomically(scratch + "/" + StateFiles.stateFile, Persistence.encode(stored))
            try Host.writeFileAtomically(scratch + "/" + StateFiles.eventsFile, Persistence.eventLine(
                VMEvent(time: config.createdAt, kind: .created, message: "created", state: .stopped)))
            try Host.rename(scratch, to: vmDirectory(name))
            try Host.syncDirectory(vmsDirectory)
        } catch {
            try? FileManager.default.removeItem(atPath: scratch)
            throw APIError(.internalError, "cannot store VM '\(name)'", cause: "\(error)")
        }
        let entry = Entry(name: name, config: config, stored: stored)
        entries.withLock { $0[name] = entry }
        log("VM '\(name)' created (id \(config.id))")
        return entry.info()
    }

    func delete(_ name: String) throws(APIError) {
        let entry = try claim(name, for: .delete)
        let doomed = vmsDirectory + "/" + StateFiles.deletingPrefix + name + "-" + StateFiles.newID()
        do {
            try Host.rename(vmDirectory(name), to: doomed)
            try Host.syncDirectory(vmsDirectory)
        } catch {
            release(name)
            throw APIError(.internalError, "cannot delete VM '\(name)'", cause: "\(error)")
        }
        entries.withLock { _ = $0.removeValue(forKey: name) }
        try? FileManager.default.removeItem(atPath: doomed)
        if !entry.id.isEmpty { try? FileManager.default.removeItem(atPath: runDirectory(entry.id)) }
        log("VM '\(name)' deleted")
    }

    /// Marks the VM busy for `action` after checking its state allows it.
    private func claim(_ name: String, for action: VMAction) throws(APIError) -> Entry {
        try Validation.checkName(name)
        let result: Result<Entry, APIError> = entries.withLock { all in
            guard var entry = all[name] else { return .failure(notFound(name)) }
            if entry.busy { return .failure(APIError(.invalidState, "VM '\(name)' is busy with another operation; try again")) }
            do throws(APIError) { try Lifecycle.check(action, in: entry.state, name: name) } catch { return .failure(error) }
            entry.busy = true
            all[name] = entry
            return .success(entry)
        }
        return try result.get()
    }

    private func release(_ name: String) {
        entries.withLock { all in all[name]?.busy = false }
    }

    // MARK: - Start

    func start(_ name: String) throws(APIError) -> VMInfo {
        var entry = try claim(name, for: .start)
        guard let config = entry.config else { release(name); throw APIError(.internalError, "VM '\(name)' has no configuration") }
        // The files may have moved since create: check again, and fail before starting anything.
        do throws(APIError) { try Validation.check(config.spec, files: Self.fileFacts) } catch {
            release(name)
            throw error
        }
        let run = runDirectory(config.id)
        do {
            try Host.makeDirectories(run)
            for file in [WorkerProtocol.exitRecord, WorkerProtocol.controlSocket] { Host.removeFile(run + "/" + file) }
        } catch {
            release(name)
            throw APIError(.internalError, "cannot prepare \(run)", cause: "\(error)")
        }
        let arguments = [workerPath, "run"] + config.spec.workerArguments + ["--run-dir", run]
        let began = HostClock.monotonicNanoseconds()
        let pid: Int32
        do { pid = try DetachedProcess.spawn(arguments: arguments, logPath: run + "/" + WorkerProtocol.log) } catch {
            release(name)
            throw APIError(.workerFailed, "cannot start the worker for VM '\(name)'", cause: "\(error)")
        }
        // Recorded before waiting: a keeld that dies now finds the worker when it comes back.
        entry.stored.state = .starting
        entry.stored.workerPID = pid
        entry.stored.startedAt = Timestamp.string()
        entry.stored.stopRequest = nil
        entry.stored.lastError = nil
        entry.isChild = true
        entry.heartbeat = nil
        update(entry, event: VMEvent(time: Timestamp.string(), kind: .state, message: "starting (worker pid \(pid))", state: .starting))

        // Ready when the control socket answers (the partition is built and its vCPUs run).
        let deadline = began + UInt64(Self.startTimeoutSeconds * 1e9)
        while HostClock.monotonicNanoseconds() < deadline {
            if let reply = try? WorkerLink.request(run, "status", timeoutMilliseconds: 1000), reply.ok {
                let milliseconds = Double(HostClock.monotonicNanoseconds() - began) / 1e6
                entry.stored.state = .running
                entry.workerStartMilliseconds = milliseconds
                entry.busy = false
                update(entry, event: VMEvent(time: Timestamp.string(), kind: .state,
                                             message: "running (worker pid \(pid), ready in \(Int(milliseconds)) ms)", state: .running))
                log("VM '\(name)' running, worker pid \(pid), ready in \(Int(milliseconds)) ms")
                return entry.info()
            }
            if let status = DetachedProcess.reap(pid), status != .running {
                if status != .exited(1) && status != .exited(2) {
                    // It ran and ended already (a guest that crashed or powered off at once).
                    let exit: WorkerExit = if case .signalled(let signal) = status { .signalled(signal) } else if case .exited(let code) = status { .exited(code) } else { .vanished }
                    entry.busy = false
                    finish(&entry, exit: exit)
                    entries.withLock { $0[name] = entry }
                    throw APIError(.workerFailed, "VM '\(name)' ended while starting: \(entry.stored.lastExit?.reason ?? "")")
                }
                // The worker refused the configuration or could not build the VM: the VM stays
                // stopped and says why.
                let message = workerError(run) ?? "the worker exited (\(status))"
                entry.stored.state = .stopped
                entry.stored.workerPID = nil
                entry.stored.startedAt = nil
                entry.stored.lastError = "start failed: \(message)"
                entry.busy = false
                update(entry, event: VMEvent(time: Timestamp.string(), kind: .error, message: "start failed: \(message)", state: .stopped))
                let code: APIError.Code = status == .exited(2) ? .invalidArgument : .workerFailed
                throw APIError(code, "VM '\(name)' did not start: \(message)")
            }
            usleep(5_000)
        }
        DetachedProcess.send(SIGKILL, to: pid)
        _ = DetachedProcess.reap(pid)
        entry.stored.state = .crashed
        entry.stored.workerPID = nil
        entry.stored.lastError = "start timed out after \(Int(Self.startTimeoutSeconds)) s; worker killed"
        entry.busy = false
        update(entry, event: VMEvent(time: Timestamp.string(), kind: .error, message: entry.stored.lastError ?? "", state: .crashed))
        throw APIError(.workerFailed, "VM '\(name)' did not start within \(Int(Self.startTimeoutSeconds)) s")
    }

    /// The worker's `keel: error: ...` line from its log, if it wrote one.
    private func workerError(_ run: String) -> String? {
        guard let bytes = Host.readSmallFile(run + "/" + WorkerProtocol.log) else { return nil }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        return lines.last(where: { $0.hasPrefix("keel: error: ") }).map { String($0.dropFirst("keel: error: ".count)) }
    }

    // MARK: - Stop, kill, pause, resume

    func stop(_ name: String, force: Bool) throws(APIError) -> VMInfo {
        var entry = try claim(name, for: force ? .forceStop : .stop)
        defer { release(name) }
        guard let pid = entry.stored.workerPID else { throw APIError(.internalError, "VM '\(name)' has no worker PID") }
        let run = runDirectory(entry.id)
        if !force && entry.stored.state == .paused {
            // A paused guest cannot answer the shutdown request.
            _ = try? WorkerLink.request(run, "resume")
        }
        let request: StopRequest = force ? .turnOff : .graceful
        // A forced stop overrides a graceful one in progress; never downgrade.
        if entry.stored.stopRequest != .kill { entry.stored.stopRequest = request }
        entry.stored.state = .stopping
        update(entry, event: VMEvent(time: Timestamp.string(), kind: .state,
                                     message: force ? "turning off" : "shutting down (asking the guest)", state: .stopping))
        DetachedProcess.send(force ? SIGINT : SIGTERM, to: pid)
        return entry.info()
    }

    func kill(_ name: String) throws(APIError) -> VMInfo {
        var entry = try claim(name, for: .kill)
        defer { release(name) }
        guard let pid = entry.stored.workerPID else { throw APIError(.internalError, "VM '\(name)' has no worker PID") }
        entry.stored.stopRequest = .kill
        entry.stored.state = .stopping
        update(entry, event: VMEvent(time: Timestamp.string(), kind: .state, message: "killing the worker (pid \(pid))", state: .stopping))
        DetachedProcess.send(SIGKILL, to: pid)
        return entry.info()
    }

    func pause(_ name: String, resume: Bool) throws(APIError) -> VMInfo {
        var entry = try claim(name, for: resume ? .resume : .pause)
        defer { release(name) }
        let run = runDirectory(entry.id)
        let reply: WorkerProtocol.Reply
        do { reply = try WorkerLink.request(run, resume ? "resume" : "pause") } catch {
            throw APIError(.workerFailed, "VM '\(name)': \(error)")
        }
        guard reply.ok else { throw APIError(.workerFailed, "VM '\(name)': the worker refused: \(reply.message)") }
        entry.stored.state = resume ? .running : .paused
        update(entry, event: VMEvent(time: Timestamp.string(), kind: .state, message: resume ? "resumed" : "paused",
                                     state: entry.stored.state))
        return entry.info()
    }

    /// The worker control socket to attach a console to.
    func consoleSocket(_ name: String) throws(APIError) -> String {
        try Validation.checkName(name)
        guard let entry = entries.withLock({ $0[name] }) else { throw notFound(name) }
        try Lifecycle.check(.console, in: entry.state, name: name)
        return WorkerLink.socketPath(runDirectory(entry.id))
    }

    // MARK: - Watching workers

    /// Polls the workers: collects exits (every 100 ms) and heartbeat changes (every second).
    func startMonitor() throws {
        _ = try NamedThread(name: "keeld-monitor") { [self] in
            var tick = 0
            while true {
                usleep(100_000)
                tick += 1
                checkWorkers(pollStatus: tick % 10 == 0)
            }
        }
    }

    func checkWorkers(pollStatus: Bool) {
        let watched = entries.withLock { $0.values.filter { $0.corruption == nil && $0.stored.state.hasWorker && $0.stored.state != .starting } }
        for var entry in watched {
            guard let pid = entry.stored.workerPID else { continue }
            let run = runDirectory(entry.id)
            var exit: WorkerExit?
            if entry.isChild, let status = DetachedProcess.reap(pid) {
                switch status {
                case .running: break
                case .exited(let code): exit = .exited(code)
                case .signalled(let signal): exit = .signalled(signal)
                }
            } else if !isOurWorker(pid, runDirectory: run) {
                exit = exitFromRecord(run)
            }
            if let exit {
                let done: Entry? = entries.withLock { all in
                    // Only if nothing else changed the entry meanwhile (a new start).
                    guard var current = all[entry.name], current.stored.workerPID == pid, current.stored.state.hasWorker,
                          current.stored.state != .starting else { return nil }
                    finish(&current, exit: exit)
                    all[entry.name] = current
                    return current
                }
                if let done { log("VM '\(done.name)': \(done.stored.lastExit?.reason ?? "stopped") -> \(done.state.rawValue)") }
                continue
            }
            if pollStatus, entry.stored.state == .running || entry.stored.state == .paused,
               let reply = try? WorkerLink.request(run, "status", timeoutMilliseconds: 500), reply.ok {
                let heartbeat = reply.fields["heartbeat"]
                let guestOS = reply.fields["guest_os"]
                var events: [VMEvent] = []
                if heartbeat != entry.heartbeat, let heartbeat, !(entry.heartbeat == nil && heartbeat == "unknown") {
                    events.append(VMEvent(time: Timestamp.string(), kind: .heartbeat, message: "heartbeat \(heartbeat)"))
                }
                if guestOS != entry.guestOS, let guestOS {
                    events.append(VMEvent(time: Timestamp.string(), kind: .guest, message: "guest OS: \(guestOS)"))
                }
                guard !events.isEmpty else { continue }
                entry.heartbeat = heartbeat
                entry.guestOS = guestOS
                entries.withLock { all in
                    guard all[entry.name]?.stored.workerPID == pid else { return }
                    all[entry.name]?.heartbeat = heartbeat
                    all[entry.name]?.guestOS = guestOS
                }
                for event in events { appendEvent(entry.name, event) }
            }
        }
    }

    /// Records the end of the worker: new state, exit info, events (with the guest's crash
    /// report from the worker's log when it crashed), written to disk.
    private func finish(_ entry: inout Entry, exit: WorkerExit) {
        let (state, reason) = Lifecycle.afterExit(exit, requested: entry.stored.stopRequest)
        var info = ExitInfo(reason: reason, time: Timestamp.string())
        switch exit {
        case .exited(let status): info.status = status
        case .signalled(let signal): info.signal = signal
        case .vanished: break
        }
        let run = runDirectory(entry.id)
        entry.stored.state = state
        entry.stored.lastExit = info
        entry.stored.workerPID = nil
        entry.stored.startedAt = nil
        entry.stored.stopRequest = nil
        entry.isChild = false
        entry.heartbeat = nil
        Host.removeFile(run + "/" + WorkerProtocol.controlSocket)
        if state == .crashed, let report = crashReport(run) {
            appendEvent(entry.name, VMEvent(time: info.time, kind: .crash, message: report))
        }
        persist(entry)
        appendEvent(entry.name, VMEvent(time: info.time, kind: .state, message: reason, state: state))
    }

    /// The worker's log lines about a guest crash (crash MSR report, panic, triple fault).
    private func crashReport(_ run: String) -> String? {
        guard let bytes = Host.readSmallFile(run + "/" + WorkerProtocol.log) else { return nil }
        let lines = String(decoding: bytes.suffix(65_536), as: UTF8.self).split(separator: "\n")
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .filter { $0.contains("crash") || $0.contains("panic") || $0.contains("triple fault") || $0.contains("error") }
        return lines.isEmpty ? nil : lines.suffix(5).joined(separator: " | ")
    }

    // MARK: - Writing

    /// Stores the entry (in memory and on disk) and appends an event.
    private func update(_ entry: Entry, event: VMEvent) {
        entries.withLock { $0[entry.name] = entry }
        persist(entry)
        appendEvent(entry.name, event)
    }

    private func persist(_ entry: Entry) {
        do {
            try Host.writeFileAtomically(vmDirectory(entry.name) + "/" + StateFiles.stateFile, Persistence.encode(entry.stored))
        } catch {
            log("error: cannot write the state of VM '\(entry.name)': \(error)")
        }
    }

    func appendEvent(_ name: String, _ event: VMEvent) {
        do { try Host.append(vmDirectory(name) + "/" + StateFiles.eventsFile, Persistence.eventLine(event)) } catch {
            log("error: cannot append to the event log of VM '\(name)': \(error)")
        }
    }
}
