//! The resource dependency graph: an edge from A to B means B needs A first (B refers to A or
//! names it in `depends_on`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::error::Error;
use crate::source::{Diagnostic, Diagnostics};
use crate::spec::Spec;
use crate::template::Reference;

pub struct Graph {
    graph: DiGraph<(), ()>,
    /// Resource indices (file order) in an order where every dependency comes first; ties are
    /// broken by file order, so the order is the same for the same spec.
    pub order: Vec<usize>,
}

impl Graph {
    /// Builds the graph of a checked spec.
    ///
    /// # Errors
    /// [`Error::Spec`] naming every resource that refers to itself and every dependency cycle
    /// with its whole path.
    pub fn build(spec: &Spec) -> Result<Graph, Error> {
        let (graph, problems) = Graph::with_problems(spec);
        if problems.is_empty() {
            Ok(graph)
        } else {
            Err(Error::Spec(Diagnostics::sorted(
                spec.source.clone(),
                problems,
            )))
        }
    }

    /// The graph and every problem of its edges: references of a resource's inputs to itself
    /// (and `depends_on` naming itself), located where they are written, and dependency cycles.
    /// With problems the graph is incomplete (its order leaves out what is in a cycle): it is
    /// for going on checking, not for planning.
    pub fn with_problems(spec: &Spec) -> (Graph, Vec<Diagnostic>) {
        let mut graph =
            DiGraph::<(), ()>::with_capacity(spec.resources.len(), spec.resources.len());
        for _ in &spec.resources {
            graph.add_node(());
        }
        let mut problems = Vec::new();
        let mut deps: Vec<usize> = Vec::new();
        for (i, resource) in spec.resources.iter().enumerate() {
            deps.clear();
            // A resource is created from its inputs, so they cannot wait for it: an edge to
            // itself would be a cycle no order satisfies.
            for (name, loc) in &resource.depends_on {
                match spec.index_of_ref(name) {
                    Some(j) if j == i => problems.push(
                        Diagnostic::new(*loc, format!("`{name}` refers to itself"))
                            .help("a resource cannot depend on itself; remove it from its own `depends_on`"),
                    ),
                    Some(j) => deps.push(j),
                    None => {}
                }
            }
            for (_, expr) in &resource.with {
                expr.each_reference(&mut |reference, loc| {
                    let Reference::Resource { name, .. } = reference else {
                        return;
                    };
                    match spec.index_of_ref(name) {
                        Some(j) if j == i && name != &resource.name => problems.push(
                            Diagnostic::new(
                                spec.source.refine(loc, &reference.written()),
                                format!("`{}` refers to its own instance `{name}`", resource.name),
                            )
                            .help("the instances of a `for_each` are made from the same fields, so they cannot use each other's attributes"),
                        ),
                        Some(j) if j == i => problems.push(
                            Diagnostic::new(
                                spec.source.refine(loc, &reference.written()),
                                format!("`{name}` refers to itself"),
                            )
                            .help("its inputs are needed to create it, so they cannot use its own attributes"),
                        ),
                        Some(j) => deps.push(j),
                        None => {}
                    }
                });
            }
            // Its own gates run once it exists, so they may use its attributes.
            for gate in &resource.verify {
                gate.each_reference(&mut |reference, _| {
                    if let Reference::Resource { name, .. } = reference
                        && let Some(j) = spec.index_of_ref(name)
                        && j != i
                    {
                        deps.push(j);
                    }
                });
            }
            deps.sort_unstable();
            deps.dedup();
            for &dep in &deps {
                graph.add_edge(NodeIndex::new(dep), NodeIndex::new(i), ());
            }
        }
        for cycle in cycles(&graph) {
            let names: Vec<&str> = cycle
                .iter()
                .map(|&i| spec.resources[i].name.as_str())
                .collect();
            let first = &spec.resources[cycle[0]];
            problems.push(
                Diagnostic::new(
                    first.loc,
                    format!("dependency cycle: {} → {}", names.join(" → "), names[0]),
                )
                .help("each resource in the cycle needs the next one first; remove one reference or `depends_on`"),
            );
        }
        let order = topological_order(&graph);
        (Graph { graph, order }, problems)
    }

    /// The resources grouped so that each needs only those of earlier groups: the first holds
    /// what needs nothing, the next what needs only the first, and so on. Within a group,
    /// resources keep their place in [`Graph::order`].
    pub fn levels(&self) -> Vec<Vec<usize>> {
        // By node: with problems, the order leaves out what is in a cycle.
        let mut level = vec![0usize; self.graph.node_count()];
        let mut levels: Vec<Vec<usize>> = Vec::new();
        for &i in &self.order {
            let l = self
                .graph
                .neighbors_directed(NodeIndex::new(i), petgraph::Direction::Incoming)
                .map(|d| level[d.index()] + 1)
                .max()
                .unwrap_or(0);
            level[i] = l;
            if levels.len() <= l {
                levels.resize_with(l + 1, Vec::new);
            }
            levels[l].push(i);
        }
        levels
    }

    /// The resources `i` needs first, in file order.
    pub fn dependencies(&self, i: usize) -> Vec<usize> {
        let mut deps: Vec<usize> = self
            .graph
            .neighbors_directed(NodeIndex::new(i), petgraph::Direction::Incoming)
            .map(NodeIndex::index)
            .collect();
        deps.sort_unstable();
        deps
    }

    /// `roots` and everything they need, transitively.
    pub fn with_dependencies(&self, roots: &[usize]) -> Vec<bool> {
        let mut keep = vec![false; self.graph.node_count()];
        let mut stack: Vec<usize> = roots.to_vec();
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut keep[i], true) {
                stack.extend(self.dependencies(i));
            }
        }
        keep
    }

    /// The graph in Graphviz DOT, edges pointing from a dependency to what needs it.
    pub fn to_dot(&self, spec: &Spec) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "digraph {} {{", quote(&spec.stack));
        out.push_str("  rankdir = \"LR\";\n  node [shape = \"box\"];\n");
        for &i in &self.order {
            let r = &spec.resources[i];
            let _ = writeln!(
                out,
                "  {} [label = {}];",
                quote(&r.name),
                quote(&format!("{}\n{}", r.name, r.type_name))
            );
        }
        for &i in &self.order {
            for dep in self.dependencies(i) {
                let _ = writeln!(
                    out,
                    "  {} -> {};",
                    quote(&spec.resources[dep].name),
                    quote(&spec.resources[i].name)
                );
            }
        }
        out.push_str("}\n");
        out
    }
}

fn quote(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

/// Kahn's algorithm with a min-heap, so ready nodes come out in file order.
fn topological_order(graph: &DiGraph<(), ()>) -> Vec<usize> {
    let mut indegree: Vec<usize> = graph
        .node_indices()
        .map(|n| {
            graph
                .neighbors_directed(n, petgraph::Direction::Incoming)
                .count()
        })
        .collect();
    let mut ready: BinaryHeap<Reverse<usize>> = indegree
        .iter()
        .enumerate()
        .filter(|(_, d)| **d == 0)
        .map(|(i, _)| Reverse(i))
        .collect();
    let mut order = Vec::with_capacity(indegree.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for next in graph.neighbors_directed(NodeIndex::new(i), petgraph::Direction::Outgoing) {
            let d = &mut indegree[next.index()];
            *d -= 1;
            if *d == 0 {
                ready.push(Reverse(next.index()));
            }
        }
    }
    order
}

/// One cycle for each strongly connected component larger than a node, as a path of nodes
/// starting from the component's first node in file order.
fn cycles(graph: &DiGraph<(), ()>) -> Vec<Vec<usize>> {
    let mut found = Vec::new();
    for component in petgraph::algo::tarjan_scc(graph) {
        if component.len() < 2 {
            continue;
        }
        let members: std::collections::HashSet<usize> =
            component.iter().map(|n| n.index()).collect();
        let start = *members.iter().min().expect("component is not empty");
        // Breadth-first search inside the component for the shortest way back to the start.
        let mut previous = std::collections::HashMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        // Walk towards dependencies, so the path reads "a needs b needs c needs a".
        'search: while let Some(node) = queue.pop_front() {
            let mut next: Vec<usize> = graph
                .neighbors_directed(NodeIndex::new(node), petgraph::Direction::Incoming)
                .map(NodeIndex::index)
                .filter(|n| members.contains(n))
                .collect();
            next.sort_unstable();
            for n in next {
                if n == start {
                    let mut path = vec![node];
                    let mut at = node;
                    while at != start {
                        at = previous[&at];
                        path.push(at);
                    }
                    path.reverse();
                    found.push(path);
                    break 'search;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = previous.entry(n) {
                    e.insert(node);
                    queue.push_back(n);
                }
            }
        }
    }
    found.sort();
    found
}
