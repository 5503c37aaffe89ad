"""BibTeX for the tool and for the papers behind what a run used (``robustbench cite``): its suites, the attacks
and adversarial protocols of the adversarial suite, and the method of its checkpoint. Author lists the project
could not check against the paper end in ``and others``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ssl_robustbench import __version__

TOOL = ("ssl_robustbench", "software", {
    "title": "ssl-robustbench: robustness of self-supervised image representations",
    "author": "{ssl-robustbench contributors}", "version": __version__, "year": "2026", "license": "MIT"})

PAPERS: dict[str, tuple[str, dict[str, str]]] = {
    "hendrycks2019benchmarking": ("inproceedings", {
        "title": "Benchmarking Neural Network Robustness to Common Corruptions and Perturbations",
        "author": "Hendrycks, Dan and Dietterich, Thomas",
        "booktitle": "International Conference on Learning Representations (ICLR)", "year": "2019"}),
    "chhipa2024mobius": ("inproceedings", {
        "title": "M{\\\"o}bius Transform for Mitigating Perspective Distortions in Representation Learning",
        "author": "Chhipa, Prakash Chandra and Chippa, Meenakshi Subhash and De, Kanjar and Saini, Rajkumar and "
                  "Liwicki, Marcus and Shah, Mubarak",
        "booktitle": "European Conference on Computer Vision (ECCV)", "year": "2024"}),
    "li2023imagenete": ("inproceedings", {
        "title": "{ImageNet-E}: Benchmarking Neural Network Robustness via Attribute Editing",
        "author": "Li, Xiaodan and others",
        "booktitle": "IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)", "year": "2023"}),
    "madry2018towards": ("inproceedings", {
        "title": "Towards Deep Learning Models Resistant to Adversarial Attacks",
        "author": "Madry, Aleksander and Makelov, Aleksandar and Schmidt, Ludwig and Tsipras, Dimitris and "
                  "Vladu, Adrian",
        "booktitle": "International Conference on Learning Representations (ICLR)", "year": "2018"}),
    "croce2020reliable": ("inproceedings", {
        "title": "Reliable Evaluation of Adversarial Robustness with an Ensemble of Diverse Parameter-free Attacks",
        "author": "Croce, Francesco and Hein, Matthias",
        "booktitle": "International Conference on Machine Learning (ICML)", "year": "2020"}),
    "jiang2020robust": ("inproceedings", {
        "title": "Robust Pre-Training by Adversarial Contrastive Learning",
        "author": "Jiang, Ziyu and Chen, Tianlong and Chen, Ting and Wang, Zhangyang",
        "booktitle": "Advances in Neural Information Processing Systems (NeurIPS)", "year": "2020"}),
    "chen2020simple": ("inproceedings", {
        "title": "A Simple Framework for Contrastive Learning of Visual Representations",
        "author": "Chen, Ting and Kornblith, Simon and Norouzi, Mohammad and Hinton, Geoffrey",
        "booktitle": "International Conference on Machine Learning (ICML)", "year": "2020"}),
    "chen2020improved": ("misc", {
        "title": "Improved Baselines with Momentum Contrastive Learning",
        "author": "Chen, Xinlei and Fan, Haoqi and Girshick, Ross and He, Kaiming",
        "eprint": "2003.04297", "archivePrefix": "arXiv", "year": "2020"}),
    "chen2021empirical": ("inproceedings", {
        "title": "An Empirical Study of Training Self-Supervised Vision Transformers",
        "author": "Chen, Xinlei and Xie, Saining and He, Kaiming",
        "booktitle": "IEEE/CVF International Conference on Computer Vision (ICCV)", "year": "2021"}),
    "chen2021exploring": ("inproceedings", {
        "title": "Exploring Simple Siamese Representation Learning", "author": "Chen, Xinlei and He, Kaiming",
        "booktitle": "IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)", "year": "2021"}),
    "grill2020bootstrap": ("inproceedings", {
        "title": "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning",
        "author": "Grill, Jean-Bastien and others",
        "booktitle": "Advances in Neural Information Processing Systems (NeurIPS)", "year": "2020"}),
    "caron2021emerging": ("inproceedings", {
        "title": "Emerging Properties in Self-Supervised Vision Transformers",
        "author": "Caron, Mathilde and Touvron, Hugo and Misra, Ishan and J{\\'e}gou, Herv{\\'e} and Mairal, Julien "
                  "and Bojanowski, Piotr and Joulin, Armand",
        "booktitle": "IEEE/CVF International Conference on Computer Vision (ICCV)", "year": "2021"}),
    "zbontar2021barlow": ("inproceedings", {
        "title": "Barlow Twins: Self-Supervised Learning via Redundancy Reduction",
        "author": "Zbontar, Jure and Jing, Li and Misra, Ishan and LeCun, Yann and Deny, St{\\'e}phane",
        "booktitle": "International Conference on Machine Learning (ICML)", "year": "2021"}),
    "bardes2022vicreg": ("inproceedings", {
        "title": "{VICReg}: Variance-Invariance-Covariance Regularization for Self-Supervised Learning",
        "author": "Bardes, Adrien and Ponce, Jean and LeCun, Yann",
        "booktitle": "International Conference on Learning Representations (ICLR)", "year": "2022"}),
    "caron2020unsupervised": ("inproceedings", {
        "title": "Unsupervised Learning of Visual Features by Contrasting Cluster Assignments",
        "author": "Caron, Mathilde and Misra, Ishan and Mairal, Julien and Goyal, Priya and Bojanowski, Piotr and "
                  "Joulin, Armand",
        "booktitle": "Advances in Neural Information Processing Systems (NeurIPS)", "year": "2020"}),
    "recht2019imagenet": ("inproceedings", {
        "title": "Do {ImageNet} Classifiers Generalize to {ImageNet}?",
        "author": "Recht, Benjamin and Roelofs, Rebecca and Schmidt, Ludwig and Shankar, Vaishaal",
        "booktitle": "International Conference on Machine Learning (ICML)", "year": "2019"}),
    "wang2019learning": ("inproceedings", {
        "title": "Learning Robust Global Representations by Penalizing Local Predictive Power",
        "author": "Wang, Haohan and Ge, Songwei and Lipton, Zachary and Xing, Eric P.",
        "booktitle": "Advances in Neural Information Processing Systems (NeurIPS)", "year": "2019"}),
    "hendrycks2021many": ("inproceedings", {
        "title": "The Many Faces of Robustness: A Critical Analysis of Out-of-Distribution Generalization",
        "author": "Hendrycks, Dan and others",
        "booktitle": "IEEE/CVF International Conference on Computer Vision (ICCV)", "year": "2021"}),
    "hendrycks2021natural": ("inproceedings", {
        "title": "Natural Adversarial Examples",
        "author": "Hendrycks, Dan and Zhao, Kevin and Basart, Steven and Steinhardt, Jacob and Song, Dawn",
        "booktitle": "IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)", "year": "2021"}),
    "kar20223d": ("inproceedings", {
        "title": "{3D} Common Corruptions and Data Augmentation",
        "author": "Kar, O{\\u{g}}uzhan Fatih and Yeo, Teresa and Atanov, Andrei and Zamir, Amir",
        "booktitle": "IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)", "year": "2022"}),
    "wu2018unsupervised": ("inproceedings", {
        "title": "Unsupervised Feature Learning via Non-Parametric Instance Discrimination",
        "author": "Wu, Zhirong and Xiong, Yuanjun and Yu, Stella X. and Lin, Dahua",
        "booktitle": "IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)", "year": "2018"}),
    "chhipa2025astra": ("inproceedings", {
        "title": "{ASTrA}: Adversarial Self-Supervised Training with Adaptive Attacks",
        "author": "Chhipa, Prakash Chandra and others",
        "booktitle": "International Conference on Learning Representations (ICLR)", "year": "2025"}),
}

#: the papers behind each suite (the adversarial suite's attacks are added by its settings)
SUITE_PAPERS = {"c": ["hendrycks2019benchmarking"], "pd": ["chhipa2024mobius"], "e": ["li2023imagenete"],
                "v2": ["recht2019imagenet"], "sketch": ["wang2019learning"], "r": ["hendrycks2021many"],
                "a": ["hendrycks2021natural"], "3dcc": ["kar20223d"],
                "adversarial": ["madry2018towards", "jiang2020robust"]}
#: the papers behind a shared head other than the linear probe
HEAD_PAPERS = {"knn": ["wu2018unsupervised", "caron2021emerging"]}
#: the paper of each SSL method a checkpoint can come from
METHOD_PAPERS = {"simclr": ["chen2020simple"], "mocov2": ["chen2020improved"], "mocov3": ["chen2021empirical"],
                 "simsiam": ["chen2021exploring"], "byol": ["grill2020bootstrap"], "dino": ["caron2021emerging"],
                 "barlowtwins": ["zbontar2021barlow"], "vicreg": ["bardes2022vicreg"],
                 "swav": ["caron2020unsupervised"], "acl": ["jiang2020robust"],
                 "astra": ["chhipa2025astra", "jiang2020robust"]}


def bibtex(key: str, kind: str, fields: Mapping[str, str]) -> str:
    """One BibTeX entry."""
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields.items())
    return f"@{kind}{{{key},\n{body}\n}}"


def run_keys(suites: Iterable[str], *, method: str | None, settings: Mapping[str, Any]) -> list[str]:
    """The paper keys behind a run: its suites (AutoAttack where the adversarial suite ran it), its head (k-NN),
    its method."""
    keys: list[str] = []
    for suite in suites:
        keys += SUITE_PAPERS.get(suite, [])
        if suite == "adversarial" and settings.get("adv", {}).get("autoattack", "standard") != "none":
            keys.append("croce2020reliable")
    keys += HEAD_PAPERS.get(settings.get("head") or "", [])
    keys += METHOD_PAPERS.get(method or "", [])
    return list(dict.fromkeys(keys))


def render(keys: Iterable[str], *, notes: Iterable[str] = ()) -> str:
    """The tool's entry, then each paper's, then ``notes`` as BibTeX comments (e.g. a checkpoint's paper)."""
    entries = [bibtex(TOOL[0], TOOL[1], TOOL[2])] + [bibtex(k, *PAPERS[k]) for k in keys]
    comments = [f"% {note}" for note in notes]
    return "\n\n".join(entries) + ("\n\n" + "\n".join(comments) if comments else "") + "\n"
