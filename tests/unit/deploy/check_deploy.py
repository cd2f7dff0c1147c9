#!/usr/bin/env python3
"""Static checks of deploy/docker and deploy/k8s against the code.

There is no container engine or cluster on the build machines, so this test
is what keeps the Dockerfiles and manifests honest: every manifest parses and
uses known kinds and apiVersions; every MEDKOORD_* variable a manifest or
image sets is a setting the binary reads (config.String/Int/Bool/Duration/
Secret in common/service_main.cc, services/<svc>/*.cc); every required setting
is given; ports agree between the listen settings, container ports, probes,
Services and Dockerfile EXPOSE; readiness uses the gRPC health service and
liveness does not touch it (nor anything that follows the database).

Usage: check_deploy.py <repository root>. Exit 0 when all checks pass.
"""

import os
import re
import sys

try:
    import yaml
except ImportError:  # Debian: python3-yaml
    print("check_deploy: python3-yaml is required (apt-get install python3-yaml)", file=sys.stderr)
    sys.exit(1)

SERVICES = ["intake", "assessment", "shortage", "rwd", "gateway"]
DOMAIN_SERVICES = [s for s in SERVICES if s != "gateway"]
KNOWN_KINDS = {
    ("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"),
    ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"), ("networking.k8s.io/v1", "Ingress"),
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
}
RUNTIME_PACKAGES = ["libgrpc++1.51", "libprotobuf32", "libpqxx-6.4", "libabsl20220623", "ca-certificates", "tzdata"]
SETTING_CALL = re.compile(r'\.\s*(String|Int|Bool|Duration|Secret)\(\s*"([a-z0-9_]+)"\s*([,)])')


class Checker:
    def __init__(self, root):
        self.root = root
        self.errors = []
        self.warnings = []

    def error(self, where, what):
        self.errors.append(f"{where}: {what}")

    def warn(self, where, what):
        if f"{where}: {what}" not in self.warnings:
            self.warnings.append(f"{where}: {what}")

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def read(self, *parts):
        with open(self.path(*parts), encoding="utf-8") as f:
            return f.read()

    # ------------------------------------------------------------ settings

    def settings_in(self, text):
        """{name: (kind, required)} of every Config getter call in `text`."""
        out = {}
        for kind, name, after in SETTING_CALL.findall(text):
            required = after == ")"
            prev = out.get(name)
            out[name] = (kind, required or (prev[1] if prev else False))
        return out

    def service_sources(self, svc):
        base = self.path("services", svc)
        texts = []
        for dirpath, _, files in os.walk(base):
            for f in sorted(files):
                if f.endswith((".cc", ".h")):
                    with open(os.path.join(dirpath, f), encoding="utf-8") as fh:
                        texts.append(fh.read())
        return "\n".join(texts)

    def documented_extras(self):
        """Per-service extra settings from docs/DEVELOPING.md's table: the
        fallback while a service's main.cc has not landed yet."""
        extras = {}
        try:
            text = self.read("docs", "DEVELOPING.md")
        except OSError:
            return extras
        for line in text.splitlines():
            m = re.match(r"\|\s*(intake|assessment|shortage|rwd|gateway)\s*\|(.*)\|\s*$", line)
            if m and m.group(1) not in extras:  # the settings table comes before the ports table
                extras[m.group(1)] = {n: ("Secret" if "secret" in m.group(2) and n.endswith("_key") else "String", False)
                                      for n in re.findall(r"`([a-z0-9_]+)`", m.group(2))}
        return extras

    def settings_of(self, svc):
        """What the binary `svc` reads: {name: (kind, required)}."""
        settings = {}
        main_cc = self.path("services", svc, "main.cc")
        sources = self.service_sources(svc)
        common = self.read("common", "service_main.cc")
        if svc != "gateway":
            settings.update(self.settings_in(common))
        if os.path.exists(main_cc):
            settings.update(self.settings_in(sources))
            # The database settings, read by common/service_main.cc's
            # ReadPoolSettings for the gateway too.
            pool = re.search(r"ReadPoolSettings\(Config& config\) \{\n(.*?)\n\}\n", common, re.S)
            if "ReadPoolSettings(" in sources and pool:
                settings.update(self.settings_in(pool.group(1)))
            # The gateway names one address setting per backend it proxies
            # (StrCat(backend, "_addr")), from the linked service descriptors.
            if re.search(r'StrCat\(\s*backend\s*,\s*"_addr"\s*\)', sources):
                for backend in DOMAIN_SERVICES:
                    settings.setdefault(f"{backend}_addr", ("String", False))
        else:
            self.warn(f"services/{svc}", "main.cc not there yet; using docs/DEVELOPING.md for its extra settings")
            settings.update(self.documented_extras().get(svc, {}))
        return settings

    @staticmethod
    def env_names_for(settings):
        """MEDKOORD_* name -> (setting, is_secret_file) accepted by a binary."""
        names = {}
        for name, (kind, _) in settings.items():
            names["MEDKOORD_" + name.upper()] = (name, False)
            if kind == "Secret":
                names["MEDKOORD_" + name.upper() + "_FILE"] = (name, True)
        return names

    # ------------------------------------------------------------ manifests

    def load_manifests(self):
        docs = []
        k8s = self.path("deploy", "k8s")
        if not os.path.isdir(k8s):
            self.error("deploy/k8s", "missing")
            return docs
        for dirpath, _, files in sorted(os.walk(k8s)):
            for f in sorted(files):
                if not f.endswith((".yaml", ".yml")):
                    continue
                if os.path.basename(dirpath) == "monitoring":
                    continue  # Prometheus files, checked by check_monitoring
                rel = os.path.relpath(os.path.join(dirpath, f), self.root)
                try:
                    with open(os.path.join(dirpath, f), encoding="utf-8") as fh:
                        loaded = [d for d in yaml.safe_load_all(fh) if d is not None]
                except yaml.YAMLError as e:
                    self.error(rel, f"does not parse: {e}")
                    continue
                for d in loaded:
                    if not isinstance(d, dict):
                        self.error(rel, "a document that is not a mapping")
                        continue
                    key = (d.get("apiVersion"), d.get("kind"))
                    if key not in KNOWN_KINDS:
                        self.error(rel, f"unknown apiVersion/kind {key}")
                    if d.get("kind") != "Kustomization" and not d.get("metadata", {}).get("name"):
                        self.error(rel, f"{d.get('kind')} without metadata.name")
                    docs.append((rel, d))
        return docs

    def check_kustomizations(self, docs):
        for rel, d in docs:
            if d.get("kind") != "Kustomization":
                continue
            folder = os.path.dirname(self.path(rel))
            for r in d.get("resources", []):
                if not os.path.exists(os.path.join(folder, r)):
                    self.error(rel, f"resource {r} does not exist")
            for p in d.get("patches", []):
                if "path" in p and not os.path.exists(os.path.join(folder, p["path"])):
                    self.error(rel, f"patch {p['path']} does not exist")
            if rel.endswith(os.path.join("base", "kustomization.yaml")):
                listed = set(d.get("resources", []))
                for f in sorted(os.listdir(folder)):
                    if f.endswith(".yaml") and f != "kustomization.yaml" and f not in listed:
                        self.error(rel, f"{f} is in base/ but not listed in resources")

    def secrets_template(self, docs):
        keys = {}
        for rel, d in docs:
            if d.get("kind") == "Secret":
                keys[d["metadata"]["name"]] = set((d.get("stringData") or {}).keys()) | set((d.get("data") or {}).keys())
        return keys

    def check_service(self, svc, by_kind, secret_keys):
        where = f"deploy/k8s {svc}"
        dep = by_kind.get(("Deployment", svc))
        if dep is None:
            self.error(where, "no Deployment")
            return None
        spec = dep["spec"]
        pod = spec["template"]["spec"]
        labels = spec["template"]["metadata"].get("labels", {})
        if spec.get("replicas", 1) < 2:
            self.error(where, "replicas must be at least 2")
        if any(labels.get(k) != v for k, v in spec["selector"]["matchLabels"].items()):
            self.error(where, "selector does not match the pod labels")
        psc = pod.get("securityContext", {})
        if not psc.get("runAsNonRoot") or psc.get("runAsUser", 0) == 0:
            self.error(where, "pod must run as a non-root user (runAsNonRoot, runAsUser != 0)")
        containers = pod.get("containers", [])
        if len(containers) != 1:
            self.error(where, "expected one container")
            return None
        c = containers[0]
        if not c.get("image", "").startswith(f"medkoord/{svc}:"):
            self.error(where, f"image {c.get('image')} is not medkoord/{svc}")
        csc = c.get("securityContext", {})
        if csc.get("readOnlyRootFilesystem") is not True:
            self.error(where, "readOnlyRootFilesystem must be true")
        if csc.get("allowPrivilegeEscalation") is not False:
            self.error(where, "allowPrivilegeEscalation must be false")
        res = c.get("resources", {})
        for part in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in res.get(part, {}):
                    self.error(where, f"resources.{part}.{r} missing")

        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        if "grpc" not in ports:
            self.error(where, "no container port named grpc")
            return None

        # The environment the binary will see.
        env = {}
        for ef in c.get("envFrom", []):
            ref = ef.get("configMapRef", {}).get("name")
            cm = by_kind.get(("ConfigMap", ref))
            if cm is None:
                self.error(where, f"envFrom names ConfigMap {ref}, which is not in the manifests")
                continue
            for k, v in (cm.get("data") or {}).items():
                env[k] = ("configmap", str(v))
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = ("value", str(e["value"]))
            elif "valueFrom" in e:
                ref = e["valueFrom"].get("secretKeyRef") or e["valueFrom"].get("configMapKeyRef")
                env[e["name"]] = ("ref", ref)
                sref = e["valueFrom"].get("secretKeyRef")
                if sref and sref["key"] not in secret_keys.get(sref["name"], set()):
                    self.error(where, f"{e['name']} refers to Secret {sref['name']} key {sref['key']}, "
                                      "which deploy/k8s/secrets.example.yaml does not define")

        settings = self.settings_of(svc)
        accepted = self.env_names_for(settings)
        for name in env:
            if name.startswith("MEDKOORD_") and name not in accepted:
                self.error(where, f"{name} is not a setting {svc} reads")
        for name, (kind, required) in settings.items():
            if not required:
                continue
            direct = "MEDKOORD_" + name.upper()
            if direct not in env and (kind != "Secret" or direct + "_FILE" not in env):
                self.error(where, f"required setting {name} ({direct}) is not set")

        # Secret files must come from mounted volumes.
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for name, (src, value) in env.items():
            if not (name.endswith("_FILE") and name.startswith("MEDKOORD_")):
                continue
            mount = next((m for m in mounts if value.startswith(m.rstrip("/") + "/")), None)
            if mount is None:
                self.error(where, f"{name}={value} is not under any volume mount")
                continue
            vol = volumes.get(mounts[mount], {})
            key = value[len(mount.rstrip("/")) + 1:]
            if "secret" in vol:
                sname = vol["secret"]["secretName"]
                if key not in secret_keys.get(sname, set()):
                    self.error(where, f"{name} reads key {key} of Secret {sname}, not in secrets.example.yaml")
            elif "configMap" in vol:
                cm = by_kind.get(("ConfigMap", vol["configMap"]["name"]))
                if cm is None or key not in (cm.get("data") or {}):
                    self.error(where, f"{name} reads {key} of ConfigMap {vol['configMap']['name']}, which has no such key")
            if settings.get(accepted.get(name, ("", False))[0], ("", False))[0] == "Secret" and "secret" not in vol:
                self.error(where, f"{name} is a secret but its file is not from a Secret")

        def port_of(var):
            v = env.get(var, (None, ""))[1]
            m = re.search(r":(\d+)$", v) if isinstance(v, str) else None
            return int(m.group(1)) if m else None

        http_var = "MEDKOORD_HTTP_LISTEN" if svc == "gateway" else "MEDKOORD_METRICS_LISTEN"
        http_name = "http" if svc == "gateway" else "metrics"
        if port_of("MEDKOORD_LISTEN") != ports.get("grpc"):
            self.error(where, f"MEDKOORD_LISTEN port {port_of('MEDKOORD_LISTEN')} != container port grpc {ports.get('grpc')}")
        if port_of(http_var) != ports.get(http_name):
            self.error(where, f"{http_var} port {port_of(http_var)} != container port {http_name} {ports.get(http_name)}")

        def resolve(p):
            return ports.get(p) if isinstance(p, str) else p

        ready = c.get("readinessProbe", {})
        live = c.get("livenessProbe", {})
        if svc == "gateway":
            # Its gRPC listener is TLS, which the kubelet's gRPC probe cannot
            # speak; /healthz on the plain HTTP side follows the same status.
            get = ready.get("httpGet", {})
            if get.get("path") != "/healthz" or resolve(get.get("port")) != ports.get("http"):
                self.error(where, "readiness must be httpGet /healthz on the http port")
        else:
            if "grpc" not in ready:
                self.error(where, "readiness must be a native gRPC probe")
            elif ready["grpc"].get("port") != ports["grpc"]:
                self.error(where, f"readiness gRPC probe port {ready['grpc'].get('port')} != grpc port {ports['grpc']}")
            elif ready["grpc"].get("service"):
                self.error(where, "readiness must probe the server's overall health (no service name)")
        if not live:
            self.error(where, "no livenessProbe")
        if "grpc" in live:
            self.error(where, "liveness must not use the gRPC health service (a database outage would restart pods)")
        if live.get("httpGet", {}).get("path") == "/healthz":
            self.error(where, "liveness must not use /healthz (it follows the database)")
        if "exec" in live and any("grpc" in a or "psql" in a or "pg_" in a for a in live["exec"].get("command", [])):
            self.error(where, "liveness exec must not touch the health service or the database")
        for kind in ("tcpSocket", "httpGet"):
            if kind in live and resolve(live[kind].get("port")) not in ports.values():
                self.error(where, f"liveness {kind} port {live[kind].get('port')} is not a container port")
        term = pod.get("terminationGracePeriodSeconds", 30)
        grace = env.get("MEDKOORD_SHUTDOWN_GRACE", (None, "20s"))[1]
        m = re.fullmatch(r"(\d+)s", grace)
        if m and term <= int(m.group(1)):
            self.error(where, f"terminationGracePeriodSeconds {term} must exceed MEDKOORD_SHUTDOWN_GRACE {grace}")

        svc_obj = by_kind.get(("Service", svc))
        if svc_obj is None:
            self.error(where, "no Service")
        else:
            sel = svc_obj["spec"].get("selector", {})
            if any(labels.get(k) != v for k, v in sel.items()):
                self.error(where, "Service selector does not match the pod labels")
            for p in svc_obj["spec"].get("ports", []):
                if resolve(p.get("targetPort")) not in ports.values():
                    self.error(where, f"Service port {p.get('name')} targets {p.get('targetPort')}, not a container port")
            if svc == "gateway" and svc_obj["spec"].get("type") not in ("LoadBalancer", "NodePort"):
                self.error(where, "the gateway's Service must be LoadBalancer or NodePort")
            if svc != "gateway" and svc_obj["spec"].get("type", "ClusterIP") != "ClusterIP":
                self.error(where, "domain services must not be exposed outside the cluster")
        for (kind, _), ing in by_kind.items():
            if kind != "Ingress":
                continue
            for rule in ing["spec"].get("rules", []):
                for path in rule.get("http", {}).get("paths", []):
                    backend = path["backend"]["service"]
                    target = by_kind.get(("Service", backend["name"]))
                    if target is None:
                        self.error(f"Ingress {ing['metadata']['name']}", f"routes to unknown Service {backend['name']}")
                    elif target["spec"]["selector"].get("app.kubernetes.io/name") == svc:
                        names = {p.get("name") for p in target["spec"]["ports"]}
                        if backend["port"].get("name") not in names and backend["port"].get("number") not in {p["port"] for p in target["spec"]["ports"]}:
                            self.error(f"Ingress {ing['metadata']['name']}", f"port {backend['port']} is not a port of {backend['name']}")
                        if path["path"].startswith("/metrics"):
                            self.error(f"Ingress {ing['metadata']['name']}", "must not expose /metrics")
            if not ing["spec"].get("tls"):
                self.error(f"Ingress {ing['metadata']['name']}", "must terminate TLS (API keys travel in HTTP Basic)")
        pdb = next((d for (k, n), d in by_kind.items() if k == "PodDisruptionBudget"
                    and all(labels.get(a) == b for a, b in d["spec"]["selector"]["matchLabels"].items())), None)
        if pdb is None:
            self.error(where, "no PodDisruptionBudget selects its pods")
        return {"ports": ports, "env": env}

    def check_addresses(self, info):
        """Every *_addr a service is given names that service's Service port."""
        for svc, data in info.items():
            for name, (_, value) in data["env"].items():
                m = re.fullmatch(r"MEDKOORD_([A-Z]+)_ADDR", name)
                if not m or not isinstance(value, str):
                    continue
                target = m.group(1).lower()
                if target not in info:
                    continue
                want = f"{target}:{info[target]['ports']['grpc']}"
                if value != want and not value.startswith(f"{target}."):
                    self.error(f"deploy/k8s {svc}", f"{name}={value}, expected {want}")

    # ------------------------------------------------------------ Dockerfiles

    def check_dockerfile(self, svc, info):
        rel = f"deploy/docker/{svc}.Dockerfile"
        try:
            text = self.read("deploy", "docker", f"{svc}.Dockerfile")
        except OSError:
            self.error(rel, "missing")
            return
        # Join continuation lines, drop comments.
        logical = re.sub(r"\\\n", " ", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))
        lines = [l.strip() for l in logical.splitlines() if l.strip()]
        froms = [l for l in lines if l.upper().startswith("FROM ")]
        if len(froms) < 2:
            self.error(rel, "must be multi-stage (a build and a runtime stage)")
        for f in froms:
            image = f.split()[1]
            if not re.fullmatch(r"debian:bookworm(-slim)?(@sha256:[0-9a-f]+)?", image):
                self.error(rel, f"{image} is not Debian 12 (debian:bookworm)")
        last_stage = logical.split(froms[-1], 1)[1] if froms else ""
        users = re.findall(r"^\s*USER\s+(\S+)", last_stage, re.M)
        if not users or users[-1].split(":")[0] in ("0", "root"):
            self.error(rel, "the runtime stage must end with a non-root USER")
        runtime_install = " ".join(l for l in last_stage.splitlines() if "apt-get install" in l)
        for pkg in RUNTIME_PACKAGES:
            if not re.search(rf"(^|\s){re.escape(pkg)}(\s|$)", runtime_install):
                self.error(rel, f"runtime stage does not install {pkg}")
        if re.search(r"(^|\s)\S+-dev(\s|$)", runtime_install):
            self.error(rel, "runtime stage installs -dev packages")
        if f"--target {svc}" not in logical:
            self.error(rel, f"does not build the CMake target {svc}")
        if f"/build/services/{svc}/{svc}" not in logical:
            self.error(rel, f"does not take the binary from /build/services/{svc}/{svc}")
        if not re.search(rf"COPY\s+--from=\S+\s+\S*/{svc}\s+/usr/local/bin/{svc}", last_stage):
            self.error(rel, f"runtime stage does not copy the {svc} binary")
        cmake = self.path("services", svc, "CMakeLists.txt")
        if os.path.exists(cmake):
            with open(cmake, encoding="utf-8") as fh:
                if not re.search(rf"add_executable\(\s*{svc}\b", fh.read()):
                    if os.path.exists(self.path("services", svc, "main.cc")):
                        self.error(rel, f"services/{svc}/CMakeLists.txt has no add_executable({svc})")
                    else:
                        self.warn(rel, f"no add_executable({svc}) yet (services/{svc}/main.cc not there yet)")
        else:
            self.warn(rel, f"services/{svc}/CMakeLists.txt not there yet")
        exposed = {int(p.split("/")[0]) for l in lines if l.upper().startswith("EXPOSE ") for p in l.split()[1:]}
        if info and exposed != set(info["ports"].values()):
            self.error(rel, f"EXPOSE {sorted(exposed)} != container ports {sorted(info['ports'].values())}")
        accepted = self.env_names_for(self.settings_of(svc))
        for name in re.findall(r"\b(MEDKOORD_[A-Z0-9_]+)=", logical):
            if name not in accepted:
                self.error(rel, f"ENV {name} is not a setting {svc} reads")
        if not os.path.exists(self.path("deploy", "docker", f"{svc}.Dockerfile.dockerignore")):
            self.warn(rel, "no Dockerfile-specific .dockerignore")

    # ------------------------------------------------------------ monitoring

    def exported_metrics(self):
        """Metric names the code registers, plus the histogram series."""
        names = set()
        for top in ("common", "services"):
            for dirpath, _, files in os.walk(self.path(top)):
                for f in files:
                    if f.endswith(".cc"):
                        with open(os.path.join(dirpath, f), encoding="utf-8") as fh:
                            text = fh.read()
                        for m in re.finditer(r'Get(Counter|Gauge|Histogram)\(\s*"([a-z_:]+)"|AddCallbackGauge\(\s*"([a-z_:]+)"', text):
                            name = m.group(2) or m.group(3)
                            names.add(name)
                            if m.group(1) == "Histogram":
                                names.update({name + "_bucket", name + "_sum", name + "_count"})
        return names

    def check_monitoring(self):
        folder = self.path("deploy", "k8s", "monitoring")
        rules_file = os.path.join(folder, "medkoord-alerts.rules.yml")
        queries_file = os.path.join(folder, "postgres-exporter-queries.yml")
        known = self.exported_metrics() | {"up"}
        try:
            with open(queries_file, encoding="utf-8") as fh:
                queries = yaml.safe_load(fh)
            for prefix, q in queries.items():
                for m in q["metrics"]:
                    (col, spec), = m.items()
                    if spec["usage"] in ("GAUGE", "COUNTER"):
                        known.add(f"{prefix}_{col}")
                    if col not in q["query"]:
                        self.error("deploy/k8s/monitoring/postgres-exporter-queries.yml", f"{col} is not in the query")
        except (OSError, yaml.YAMLError, KeyError, ValueError) as e:
            self.error("deploy/k8s/monitoring/postgres-exporter-queries.yml", f"unreadable: {e}")
        try:
            with open(rules_file, encoding="utf-8") as fh:
                rules = yaml.safe_load(fh)
        except (OSError, yaml.YAMLError) as e:
            self.error("deploy/k8s/monitoring/medkoord-alerts.rules.yml", f"unreadable: {e}")
            return
        seen = set()
        for group in rules.get("groups", []):
            for rule in group.get("rules", []):
                where = f"alert {rule.get('alert')}"
                if not rule.get("alert") or not rule.get("expr"):
                    self.error(where, "needs alert and expr")
                    continue
                if rule["alert"] in seen:
                    self.error(where, "defined twice")
                seen.add(rule["alert"])
                if rule.get("labels", {}).get("severity") not in ("warning", "critical"):
                    self.error(where, "labels.severity must be warning or critical")
                if not rule.get("annotations", {}).get("summary"):
                    self.error(where, "annotations.summary missing")
                expr = re.sub(r'"[^"]*"', '""', rule["expr"])  # label values are not metric names
                for name in set(re.findall(r"\b(medkoord_[a-z_]+|up)\b(?!\s*\()", expr)):
                    if name not in known:
                        self.error(where, f"uses {name}, which no binary or exporter query exports")
        for required in ("MedkoordNotServing", "MedkoordHighServerErrorRate", "MedkoordHighLatencyP99",
                         "MedkoordDbPoolSaturated", "MedkoordOutboxLagging"):
            if required not in seen:
                self.error("deploy/k8s/monitoring/medkoord-alerts.rules.yml", f"no {required} alert")
        try:
            obs = self.read("docs", "OBSERVABILITY.md")
            for name in sorted(self.exported_metrics()):
                if not name.endswith(("_bucket", "_sum", "_count")) and name not in obs:
                    self.warn("docs/OBSERVABILITY.md", f"metric {name} is not documented")
        except OSError:
            self.warn("docs/OBSERVABILITY.md", "missing")

    # ------------------------------------------------------------ docs

    def check_docs(self):
        try:
            ops = self.read("docs", "OPERATIONS.md")
        except OSError:
            self.warn("docs/OPERATIONS.md", "missing")
            return
        for svc in SERVICES:
            for name in sorted(self.settings_of(svc)):
                if f"`{name}`" not in ops and f"--{name}" not in ops:
                    self.warn("docs/OPERATIONS.md", f"setting {name} of {svc} is not documented")

    def run(self):
        docs = self.load_manifests()
        self.check_kustomizations(docs)
        by_kind = {}
        for rel, d in docs:
            if "$patch" in d or d.get("kind") == "Kustomization":
                continue
            key = (d["kind"], d["metadata"]["name"])
            if key in by_kind and not rel.endswith("secrets.example.yaml"):
                self.error(rel, f"{key} defined twice")
            by_kind[key] = d
        secret_keys = self.secrets_template(docs)
        info = {}
        for svc in SERVICES:
            got = self.check_service(svc, by_kind, secret_keys)
            if got:
                info[svc] = got
        self.check_addresses(info)
        for svc in SERVICES:
            self.check_dockerfile(svc, info.get(svc))
        self.check_monitoring()
        self.check_docs()
        for w in self.warnings:
            print("warning:", w)
        for e in self.errors:
            print("ERROR:", e)
        print(f"check_deploy: {len(docs)} manifest documents, {len(SERVICES)} services, "
              f"{len(self.errors)} errors, {len(self.warnings)} warnings")
        return 1 if self.errors else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(Checker(os.path.abspath(sys.argv[1])).run())
