import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import SVirt
import Synchronization

/// A small client for etcd's v3 JSON gateway over AsyncHTTPClient: failover over the members, TLS client
/// certificates, etcd auth tokens, bounded time for every operation.
///
/// Reads and other idempotent requests are retried on the next member until `operationTimeout`. Writes are
/// retried only when they cannot have been applied (the connection was refused, or etcd answered "no leader");
/// otherwise they fail with `EtcdFailure.ambiguous` and the caller checks what happened.
public final class EtcdClient: Sendable {
    public let configuration: EtcdConfiguration
    let http: HTTPClient
    private struct State {
        var preferred = 0
        var token: String?
    }
    private let state = Mutex(State())
    private let password: String?

    public init(configuration: EtcdConfiguration) throws {
        self.configuration = configuration
        var tls: TLSConfiguration?
        if configuration.useTLS {
            var t = TLSConfiguration.makeClientConfiguration()
            if let ca = configuration.caPath {
                try Self.checkReadable(ca, what: "CA certificate (--registry-ca)")
                t.trustRoots = .file(ca)
            }
            if let cert = configuration.certificatePath {
                try Self.checkReadable(cert, what: "client certificate (--registry-cert)")
                do {
                    t.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
                } catch {
                    throw SVirtError(.configuration, "cannot read the client certificate \(cert): \(error); "
                                     + "give a PEM certificate with --registry-cert")
                }
                guard let key = configuration.keyPath else {
                    throw SVirtError(.configuration, "the client certificate \(cert) needs its private key: "
                                     + "give it with --registry-key (or registry_key in svirt.conf)")
                }
                try Self.checkReadable(key, what: "client key (--registry-key)")
                do {
                    t.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
                } catch {
                    throw SVirtError(.configuration, "cannot read the client key \(key): \(error); "
                                     + "give the PEM private key of the client certificate with --registry-key")
                }
            } else if configuration.keyPath != nil {
                throw SVirtError(.configuration, "--registry-key was given without --registry-cert; give both or neither")
            }
            tls = t
        }
        if let user = configuration.user {
            guard let file = configuration.passwordFile else {
                throw SVirtError(.configuration, "etcd user '\(user)' needs a password: give a file holding it with "
                                 + "--registry-password-file (or registry_password_file in svirt.conf)")
            }
            guard let data = FileManager.default.contents(atPath: file) else {
                throw SVirtError(.configuration, "cannot read the etcd password file \(file); check that it exists and is readable")
            }
            password = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
        } else {
            password = nil
        }
        var pool = HTTPClient.Configuration.ConnectionPool()
        // A dead member must fail at once so the next one is tried; the operation deadline bounds the retries.
        pool.retryConnectionEstablishment = false
        var config = HTTPClient.Configuration(
            tlsConfiguration: tls,
            timeout: .init(connect: .milliseconds(Int64(min(configuration.requestTimeout, 2) * 1000)), read: nil),
            connectionPool: pool)
        config.httpVersion = .http1Only
        http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: config)
    }

    private static func checkReadable(_ path: String, what: String) throws {
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw SVirtError(.configuration, "cannot read the \(what) \(path); check the path and its permissions")
        }
    }

    /// Closes the connections. Call once, when done.
    public func shutdown() async {
        try? await http.shutdown()
    }

    func url(_ index: Int, _ path: String) -> String {
        "\(configuration.useTLS ? "https" : "http")://\(configuration.endpoints[index])\(path)"
    }

    // MARK: Requests

    /// Posts `body` to `path` and decodes the answer, failing over between members.
    func post<Response: Decodable>(_ path: String, _ body: some Encodable, idempotent: Bool,
                                   as: Response.Type = Response.self,
                                   timeout: Double? = nil) async throws(EtcdFailure) -> Response {
        let payload: Data
        do { payload = try JSONEncoder().encode(body) } catch {
            throw .server(code: 3, message: "cannot encode the request: \(error)")
        }
        let data = try await send(path, payload, idempotent: idempotent, timeout: timeout ?? configuration.operationTimeout)
        return try EtcdDecoding.answer(data, path: path)
    }

    private func send(_ path: String, _ payload: Data, idempotent: Bool, timeout: Double) async throws(EtcdFailure) -> Data {
        let deadline = Date().addingTimeInterval(timeout)
        let count = configuration.endpoints.count
        var lastFailure = EtcdFailure.unavailable("no member was tried")
        var round = 0
        var reauthenticated = false
        while true {
            let start = state.withLock { $0.preferred }
            for step in 0..<count {
                let index = (start + step) % count
                let remaining = deadline.timeIntervalSinceNow
                if remaining <= 0 { throw finalFailure(lastFailure) }
                do {
                    let data = try await attempt(index, path, payload, timeout: min(configuration.requestTimeout, remaining))
                    state.withLock { $0.preferred = index }
                    return data
                } catch {
                    lastFailure = error
                    switch error {
                    case .unavailable:
                        continue
                    case .ambiguous:
                        if !idempotent { throw error }
                        continue
                    case .server(let code, let message):
                        if code == 16 || message.contains("invalid auth token") {
                            if !reauthenticated, configuration.user != nil {
                                reauthenticated = true
                                state.withLock { $0.token = nil }
                                continue
                            }
                            throw error
                        }
                        // 14: unavailable ("no leader", "not capable"); nothing was proposed.
                        if code == 14 && (message.contains("no leader") || message.contains("not capable")) {
                            lastFailure = .unavailable("\(configuration.endpoints[index]): \(message)")
                            continue
                        }
                        // "request timed out", "leader changed": a proposal may have been made.
                        if code == 4 || code == 14 || message.contains("timed out") || message.contains("leader changed") {
                            let failure = EtcdFailure.ambiguous("\(configuration.endpoints[index]): \(message)")
                            if !idempotent { throw failure }
                            lastFailure = failure
                            continue
                        }
                        throw error
                    }
                }
            }
            round += 1
            let pause = min(0.05 * Double(round), 0.5)
            if deadline.timeIntervalSinceNow <= pause { throw finalFailure(lastFailure) }
            try? await Task.sleep(nanoseconds: UInt64(pause * 1e9))
            if Task.isCancelled { throw .unavailable("cancelled") }
        }
    }

    private func finalFailure(_ last: EtcdFailure) -> EtcdFailure {
        switch last {
        case .unavailable(let m): return .unavailable(m)
        case .ambiguous(let m): return .ambiguous(m)
        case .server: return last
        }
    }

    private func headers() async throws(EtcdFailure) -> [(String, String)] {
        var h = [("Content-Type", "application/json")]
        guard let user = configuration.user, let password else { return h }
        if let t = state.withLock({ $0.token }) {
            h.append(("Authorization", t))
            return h
        }
        let body: Data
        do { body = try JSONEncoder().encode(EtcdAuthRequest(name: user, password: password)) } catch {
            throw .server(code: 3, message: "cannot encode the auth request")
        }
        var lastFailure = EtcdFailure.unavailable("no member was tried")
        for index in 0..<configuration.endpoints.count {
            do throws(EtcdFailure) {
                let data = try await attempt(index, "/v3/auth/authenticate", body, timeout: configuration.requestTimeout, auth: false)
                guard let token = EtcdDecoding.authToken(data) else {
                    throw EtcdFailure.server(code: 16, message: "etcd gave no auth token for user '\(user)'")
                }
                state.withLock { $0.token = token }
                h.append(("Authorization", token))
                return h
            } catch {
                if case .server = error { throw error }
                lastFailure = error
            }
        }
        throw lastFailure
    }

    private func attempt(_ index: Int, _ path: String, _ payload: Data, timeout: Double, auth: Bool = true) async throws(EtcdFailure) -> Data {
        var request = HTTPClientRequest(url: url(index, path))
        request.method = .POST
        let hs = auth ? try await headers() : [("Content-Type", "application/json")]
        for (k, v) in hs { request.headers.add(name: k, value: v) }
        request.body = .bytes(ByteBuffer(bytes: payload))
        let endpoint = configuration.endpoints[index]
        do {
            let response = try await http.execute(request, timeout: .milliseconds(Int64(max(timeout, 0.05) * 1000)))
            var buffer = try await response.body.collect(upTo: 256 << 20)
            let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
            let data = Data(bytes)
            guard response.status == .ok else {
                throw EtcdDecoding.errorAnswer(data, status: response.status.code)
            }
            return data
        } catch let e as EtcdFailure {
            throw e
        } catch {
            throw Self.classify(error, endpoint: endpoint)
        }
    }

    static func classify(_ error: any Error, endpoint: String) -> EtcdFailure {
        if error is NIOConnectionError { return .unavailable("\(endpoint): connection refused or unreachable") }
        if let io = error as? IOError, [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH].contains(io.errnoCode) {
            return .unavailable("\(endpoint): \(io)")
        }
        if let h = error as? HTTPClientError, h == .connectTimeout {
            return .unavailable("\(endpoint): connection timed out")
        }
        if error is NIOSSLError || String(describing: type(of: error)).contains("SSL") {
            return .unavailable("\(endpoint): TLS failed: \(error)")
        }
        if let h = error as? HTTPClientError, h == .deadlineExceeded || h == .readTimeout {
            return .ambiguous("\(endpoint): no answer in time")
        }
        return .ambiguous("\(endpoint): \(error)")
    }

    // MARK: Operations

    /// Reads `key` (or the range up to `end`), linearizable, at `revision` when given.
    func range(_ key: String, end: Data? = nil, limit: Int64? = nil, revision: Int64? = nil,
               countOnly: Bool = false) async throws(EtcdFailure) -> EtcdRangeResponse {
        try await post("/v3/kv/range",
                       EtcdRangeRequest(key: Data(key.utf8), range_end: end, limit: limit.map(EtcdInt.init),
                                        revision: revision.map(EtcdInt.init), count_only: countOnly ? true : nil),
                       idempotent: true)
    }

    /// Reads every key under `prefix` at one revision, in pages.
    func rangePrefix(_ prefix: String, pageSize: Int64 = 5000) async throws(EtcdFailure) -> (kvs: [EtcdKeyValue], revision: Int64) {
        var out: [EtcdKeyValue] = []
        var from = Data(prefix.utf8)
        let end = prefixEnd(prefix)
        var revision: Int64?
        while true {
            let r: EtcdRangeResponse = try await post(
                "/v3/kv/range",
                EtcdRangeRequest(key: from, range_end: end, limit: EtcdInt(pageSize), revision: revision.map(EtcdInt.init)),
                idempotent: true)
            if revision == nil { revision = r.header?.rev }
            let kvs = r.kvs ?? []
            out += kvs
            guard r.more == true, let last = kvs.last else { break }
            from = last.key + Data([0])
        }
        return (out, revision ?? 0)
    }

    func txn(_ t: EtcdTxnRequest) async throws(EtcdFailure) -> EtcdTxnResponse {
        try await post("/v3/kv/txn", t, idempotent: false)
    }

    /// Grants a lease of `ttl` seconds and returns its id.
    func grantLease(ttl: Int64) async throws(EtcdFailure) -> Int64 {
        let r: EtcdLeaseGrantResponse = try await post("/v3/lease/grant", EtcdLeaseGrantRequest(TTL: EtcdInt(ttl)),
                                                       idempotent: true)
        return try EtcdDecoding.grantedLease(r)
    }

    /// Renews a lease once; returns its new TTL, or 0 when the lease no longer exists.
    func keepAlive(_ id: Int64) async throws(EtcdFailure) -> Int64 {
        let r: EtcdKeepAliveResult = try await post("/v3/lease/keepalive", EtcdLeaseID(ID: EtcdInt(id)), idempotent: true,
                                                    timeout: configuration.requestTimeout)
        return r.result?.TTL?.value ?? 0
    }

    func revokeLease(_ id: Int64) async {
        let _: EtcdErrorBody? = try? await post("/v3/lease/revoke", EtcdLeaseID(ID: EtcdInt(id)), idempotent: true,
                                                timeout: configuration.requestTimeout)
    }

    /// Streams watch messages for the keys under `prefix` from `revision` on one member, calling `body` for each
    /// message until the stream ends, fails, or `body` returns false.
    func watch(prefix: String, from revision: Int64, endpoint index: Int,
               _ body: (EtcdWatchMessage.Body) throws -> Bool) async throws {
        var request = HTTPClientRequest(url: url(index, "/v3/watch"))
        request.method = .POST
        for (k, v) in try await headers() { request.headers.add(name: k, value: v) }
        let create = EtcdWatchCreate(create_request: .init(key: Data(prefix.utf8), range_end: prefixEnd(prefix),
                                                           start_revision: EtcdInt(revision)))
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(create)))
        let response = try await http.execute(request, timeout: .hours(24 * 365))
        guard response.status == .ok else {
            throw EtcdFailure.server(code: 2, message: "watch on \(configuration.endpoints[index]) answered HTTP \(response.status.code)")
        }
        var pending: [UInt8] = []
        let decoder = JSONDecoder()
        for try await var chunk in response.body {
            pending += chunk.readBytes(length: chunk.readableBytes) ?? []
            while let line = EtcdDecoding.nextLine(&pending) {
                if line.isEmpty { continue }
                guard let result = try EtcdDecoding.watchResult(line, decoder: decoder) else { continue }
                if try !body(result) { return }
            }
        }
    }

    /// Which member to watch first: the one that answered last.
    var preferredEndpoint: Int { state.withLock { $0.preferred } }
}
