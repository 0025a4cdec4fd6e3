#!/usr/bin/env bash
# The README's first command: install what is missing, bring up a 3-node cluster, put pods on
# it and show them reaching each other across nodes (ping, trace, traceroute). The cluster stays
# up afterwards for you to explore; `npx kubewire down` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/ensure-tools.sh nats-server dig
[ -x node_modules/.bin/tsx ] || npm ci --no-audit --no-fund
kw() { echo "\$ kubewire $*" >&2; node bin/kubewire.js "$@"; }
node bin/kubewire.js down >/dev/null 2>&1 || true

kw up --nodes 3 --detach
kw run web-1 --node node-1
kw run web-2 --node node-1
kw run api-1 --node node-2 --port 5201/udp
kw run db-1 --node node-3
kw get pods
ip_of() { node bin/kubewire.js get pods | awk -v p="$1" '$2 == p { print $4 }'; }

echo; echo "== same node: web-1 -> web-2"
kw exec web-1 -- ping -c 2 -i 0.2 "$(ip_of web-2)"
echo; echo "== across nodes: web-1 (node-1) -> api-1 (node-2) over VXLAN on NATS"
kw exec web-1 -- ping -c 3 -i 0.2 "$(ip_of api-1)"
echo; echo "== every hop of one probe"
kw trace web-1 "$(ip_of api-1)"
echo; echo "== the routers on the way to node-3"
kw exec web-1 -- traceroute "$(ip_of db-1)"

export KUBECONFIG="$(node bin/kubewire.js kubeconfig --path)"
if command -v kubectl >/dev/null 2>&1; then
  echo; echo "== the same cluster through kubectl (KUBECONFIG=$KUBECONFIG)"
  echo "\$ kubectl apply -f deploy/examples/web.yaml" >&2
  kubectl apply -f deploy/examples/web.yaml
  kubectl rollout status deployment/web -n demo --timeout=60s
  echo "\$ kubectl get pods -n demo -o wide" >&2
  kubectl get pods -n demo -o wide
  kubectl get endpointslices -n demo
  first=$(kubectl get pods -n demo -o jsonpath='{.items[0].metadata.name}')
  other_ip=$(kubectl get pods -n demo -o jsonpath='{.items[2].status.podIP}')
  echo "\$ kubectl exec -n demo $first -- ping -c 2 $other_ip" >&2
  kubectl exec -n demo "$first" -- ping -c 2 -i 0.2 "$other_ip"
  echo; echo "== TCP across nodes: curl from one replica to another (agnhost netexec answers /hostname and /clientip)"
  echo "\$ kubectl exec -n demo $first -- curl -s http://$other_ip:8080/hostname" >&2
  kubectl exec -n demo "$first" -- curl -s -m 10 "http://$other_ip:8080/hostname"; echo
  echo "\$ kubectl exec -n demo $first -- curl -s http://$other_ip:8080/clientip" >&2
  kubectl exec -n demo "$first" -- curl -s -m 10 "http://$other_ip:8080/clientip"; echo
  echo; echo "== the Service: kube-proxy on every node spreads its ClusterIP over the 3 replicas"
  vip=$(kubectl get svc web -n demo -o jsonpath='{.spec.clusterIP}')
  echo "\$ kubectl exec -n demo $first -- curl -s 'http://127.0.0.1:8080/dial?request=hostname&host=$vip&port=80&tries=12'" >&2
  kubectl exec -n demo "$first" -- curl -s -m 20 "http://127.0.0.1:8080/dial?request=hostname&host=$vip&port=80&tries=12"; echo
  echo "\$ kubewire exec --node node-1 -- iptables-save -t nat | grep -E '^-A KUBE-(SERVICES|SVC-).*demo/web:http'" >&2
  node bin/kubewire.js exec --node node-1 -- iptables-save -t nat | grep -E '^-A KUBE-(SERVICES|SVC-).*demo/web:http' | head -6
  first_node=$(kubectl get pod -n demo "$first" -o jsonpath='{.spec.nodeName}')
  echo "\$ kubewire exec --node $first_node -- conntrack -L | grep 'dport=80 '   (on $first's node: the DNAT, the reply comes from the endpoint)" >&2
  node bin/kubewire.js exec --node "$first_node" -- conntrack -L | grep 'dport=80 ' | head -4
  echo; echo "== cluster DNS: coredns pods in kube-system behind kube-dns (10.96.0.10); pods resolve Services by name"
  kubectl get pods -n kube-system -l k8s-app=kube-dns -o wide
  echo "\$ kubectl exec -n demo $first -- cat /etc/resolv.conf" >&2
  kubectl exec -n demo "$first" -- cat /etc/resolv.conf
  echo "\$ kubectl exec -n demo $first -- curl -s http://web/hostname   (web -> web.demo.svc.cluster.local through the search path)" >&2
  kubectl exec -n demo "$first" -- curl -s -m 10 http://web/hostname; echo
  echo "\$ kubectl exec -n demo $first -- nslookup web" >&2
  kubectl exec -n demo "$first" -- nslookup web
  if command -v dig >/dev/null 2>&1; then
    echo "\$ dig @127.0.1.1 -p 1053 web.demo.svc.cluster.local +short   (from this machine, through node-1's DNS port)" >&2
    dig @127.0.1.1 -p 1053 web.demo.svc.cluster.local +short
    echo "\$ dig @127.0.1.2 -p 1053 _http._tcp.web.demo.svc.cluster.local SRV +short" >&2
    dig @127.0.1.2 -p 1053 _http._tcp.web.demo.svc.cluster.local SRV +short
  fi
  echo; echo "== from this machine through a NodePort: a real socket on every node (127.0.1.N)"
  kubectl patch svc web -n demo -p '{"spec":{"type":"NodePort"}}' >/dev/null
  np=$(kubectl get svc web -n demo -o jsonpath='{.spec.ports[0].nodePort}')
  for n in 1 2 3; do
    echo "\$ curl -s http://127.0.1.$n:$np/hostname" >&2
    out=""
    for _ in $(seq 20); do out=$(curl -s -m 5 "http://127.0.1.$n:$np/hostname" || true); [ -n "$out" ] && break; sleep 0.25; done
    echo "$out"
  done
fi
echo
echo "The cluster is still up:  export KUBECONFIG=$KUBECONFIG"
echo "Try: npx kubewire capture --node node-1 --dev flannel.1 -w /tmp/vxlan.pcap --count 4"
echo "(then ping again and read it with tshark -r /tmp/vxlan.pcap). Stop it with: npx kubewire down"
